"""Which parameters a curvature operator acts on: ``params=`` resolved to names.

Nothing here is public (:class:`hessian.curvature.model.ModelView` documents the rules).
Every tensor has one canonical name, the first under which ``named_parameters`` lists
it; a tensor tied to several modules (a language model's input embedding and output
layer) is therefore one parameter, counted once, whichever of its names selects it.
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import Any

import torch
from torch import nn

__all__ = ["ALLOWED", "group_by_owner", "select_names"]

ALLOWED = ("None, a parameter name, a name prefix (a module path such as 'encoder.layer.1'), "
           "a glob pattern such as '*.attn.*', a tensor, a module, or a list of these")


class _Names:
    """Canonical names of a module's parameters and every alias of each."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.named = dict(model.named_parameters())
        self.canon = {id(p): n for n, p in self.named.items()}
        self.alias = {n: self.canon[id(p)]
                      for n, p in model.named_parameters(remove_duplicate=False)}

    def close(self, text: str) -> str:
        near = difflib.get_close_matches(text, list(self.alias), n=3)
        names = near or list(self.alias)[:3]
        return ", ".join(repr(n) for n in names)


def _entries(params: Any) -> list:
    if isinstance(params, dict):
        return list(params.values())
    if isinstance(params, (str, torch.Tensor, nn.Module)):
        return [params]
    if isinstance(params, (bytes, bool)) or not hasattr(params, "__iter__"):
        raise TypeError(f"params must be {ALLOWED}; got {type(params).__name__}")
    return list(params)


def _pattern(names: _Names, text: str) -> list[str]:
    """Canonical names matched by a prefix or a glob pattern (aliases included)."""
    if any(c in text for c in "*?["):
        hits = [n for n in names.alias if fnmatch.fnmatchcase(n, text)]
    else:
        hits = [n for n in names.alias if n.startswith(text + ".")]
    out: list[str] = []
    for n in hits:
        c = names.alias[n]
        if c not in out:
            out.append(c)
    return sorted(out, key=list(names.named).index)


def _module_names(names: _Names, module: nn.Module) -> list[str]:
    if not any(m is module for m in names.model.modules()):
        raise ValueError(f"a {type(module).__name__} in params is not a submodule of the model")
    return [names.canon[id(p)] for p in module.parameters()]


def _check_grad(names: _Names, name: str) -> None:
    if not names.named[name].requires_grad:
        raise ValueError(
            f"parameter {name!r} does not require grad; curvature needs "
            "requires_grad=True on every chosen parameter"
        )


def select_names(model: nn.Module, params: Any) -> list[str]:
    """Canonical names of the parameters ``params`` selects, in the order given.

    An exact name or a tensor selects one parameter, which must require grad; a prefix,
    a glob pattern or a module selects every parameter under it that requires grad (at
    least one). A parameter listed twice (the same tensor or name again) is an error;
    two names of one tied tensor, or overlapping patterns, select it once.
    """
    names = _Names(model)
    if params is None:
        chosen = [n for n, p in names.named.items() if p.requires_grad]
        if not chosen:
            raise ValueError("no parameter of the model requires grad")
        return chosen
    out: list[str] = []
    explicit: dict[str, list] = {}  # canonical name -> how explicit entries spelt it
    for i, entry in enumerate(_entries(params)):
        if isinstance(entry, torch.Tensor) or (isinstance(entry, str) and entry in names.alias):
            if isinstance(entry, str):
                name, spelling = names.alias[entry], entry
            elif id(entry) in names.canon:
                name, spelling = names.canon[id(entry)], None
            else:
                raise ValueError(f"params[{i}], a tensor of shape {tuple(entry.shape)}, is not "
                                 "a parameter of the model")
            seen = explicit.setdefault(name, [])
            if seen and (spelling is None or None in seen or spelling in seen):
                raise ValueError(
                    f"params lists parameter {name!r} twice (entry {i}); list each parameter "
                    "once (two names of one tied tensor select it once)"
                )
            seen.append(spelling)
            _check_grad(names, name)
            hits = [name]
        elif isinstance(entry, (str, nn.Module)):
            found = (_pattern(names, entry) if isinstance(entry, str)
                     else _module_names(names, entry))
            what = repr(entry) if isinstance(entry, str) else f"module {type(entry).__name__}"
            if not found:
                raise ValueError(f"params entry {what} matches no parameter name, prefix or "
                                 f"pattern; the model's names look like {names.close(entry)}")
            hits = [n for n in found if names.named[n].requires_grad]
            if not hits:
                raise ValueError(f"params entry {what} selects only parameters that do not "
                                 "require grad")
        else:
            raise TypeError(f"params entries must be names, patterns, tensors or modules "
                            f"(params: {ALLOWED}); entry {i} is {type(entry).__name__}")
        out += [n for n in hits if n not in out]
    if not out:
        raise ValueError("params is empty")
    return out


def group_by_owner(model: nn.Module, chosen: list[str]) -> dict[str, list[str]]:
    """Chosen names grouped by the first module (in module order) that holds each directly."""
    names = _Names(model)
    left = set(chosen)
    groups: dict[str, list[str]] = {}
    for mod_name, m in model.named_modules():
        own = []
        for p in m.parameters(recurse=False):
            c = names.canon.get(id(p))
            if c in left:
                own.append(c)
                left.discard(c)
        if own:
            groups[mod_name or "<root>"] = own
    return groups
