"""Recipe signatures shared by the differential tests: as just source and as @recipe tasks.

Each task prints ``R NAME <value>...``: its bound values in parameter order,
variadic items last, exactly what the generated just recipe prints from "$@".
"""

from __future__ import annotations

from invoke import Collection

from dome_tasks.just.args import recipe

#: recipe name -> just parameter list
SIGNATURES = {
    "none": "",
    "req": "a",
    "opt": "a='d'",
    "req2": "a b",
    "req-opt": "a b='d'",
    "opt2": "a='x' b='y'",
    "plus": "+a",
    "star": "*a",
    "req-star": "a *rest",
    "req-opt-star": "a b='d' *rest",
    "req-plus": "a +rest",
}


def emit(name: str, *values: object) -> None:
    print("R " + name + "".join(f" <{v}>" for v in values))


@recipe
def none(c):
    emit("none")


@recipe
def req(c, a):
    emit("req", a)


@recipe
def opt(c, a="d"):
    emit("opt", a)


@recipe
def req2(c, a, b):
    emit("req2", a, b)


@recipe
def req_opt(c, a, b="d"):
    emit("req-opt", a, b)


@recipe
def opt2(c, a="x", b="y"):
    emit("opt2", a, b)


@recipe(plus=True)
def plus(c, *a):
    emit("plus", *a)


@recipe
def star(c, *a):
    emit("star", *a)


@recipe
def req_star(c, a, *rest):
    emit("req-star", a, *rest)


@recipe
def req_opt_star(c, a, b="d", *rest):
    emit("req-opt-star", a, b, *rest)


@recipe(plus=True)
def req_plus(c, a, *rest):
    emit("req-plus", a, *rest)


TASKS = [none, req, opt, req2, req_opt, opt2, plus, star, req_star, req_opt_star, req_plus]
ns = Collection(*TASKS)


def justfile_text() -> str:
    """A justfile with one printing recipe per signature."""
    out = []
    for name, params in SIGNATURES.items():
        out.append("[positional-arguments]")
        out.append(f"{name} {params}:".replace(" :", ":"))
        out.append(
            f"    @printf 'R %s' {name}; for v in \"$@\"; do printf ' <%s>' \"$v\"; done; echo"
        )
        out.append("")
    return "\n".join(out)
