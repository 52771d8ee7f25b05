"""Lab 09 exercise: a request check of the model server, on the names of a request's inputs.

A V2 inference request names each input tensor. The model reads 15 features; before it decodes any
value, the server asks `input_problem` whether the names are right. Your message goes back to the
client with status 400; None lets the request go on to the value checks and the model.

With FRAUD_LAB_CODE pointing at this folder (locally) or this file mounted from a ConfigMap (the
SeldonDeployment's model container on the cluster), your function is the check the server runs
on every request. The server tries it on a complete request when it loads the model: a check
that refuses the 15 right names, or is still a TODO, stops the model from loading.

Check your work: `make lab-09 TARGET=local` (one line per behaviour).
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
    # TODO(lab-09): 1. a name given more than once: return a message naming it.
    # TODO(lab-09): 2. collect the expected names missing from `names` and the names not in
    #   `expected`; when both lists are empty return None, else a message naming them all.
    raise NotImplementedError("TODO(lab-09): input_problem")
