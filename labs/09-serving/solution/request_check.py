"""Lab 09 exercise, solved: a request check of the model server, on the names of a request's
inputs (the reference system's `serving.runtime.input_problem`).

Check it: `make lab-09 TARGET=local` (one line per behaviour).
"""


def input_problem(names: list[str], expected: tuple[str, ...]) -> str | None:
    """What is wrong with a request's input names, or None when nothing is.

    Args:
        names: the request's input names, in request order; a name may appear twice.
        expected: the 15 names the model reads (TX_AMOUNT, TX_DURING_WEEKEND, …).

    Returns:
        None when `names` holds each expected name exactly once (any order); otherwise one
        message for the client that names the repeated names, or the missing and the unknown ones.
    """
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        return f"duplicate input names in the request: {', '.join(repeated)}"
    missing = [n for n in expected if n not in names]
    unknown = sorted(set(names) - set(expected))
    if not missing and not unknown:
        return None
    problems = []
    if missing:
        problems.append(f"missing inputs: {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown inputs: {', '.join(unknown)}")
    return "; ".join(problems) + f". Expected the {len(expected)} inputs {', '.join(expected)}"
