"""One module per ``genevae`` verb: train (with --auto-fix), evaluate, report, embed,
simulate, diagnose, sweep, demo. The CLI parses the arguments and calls one public
function here; each function holds the sequence of its command, and the work is done
in :mod:`genevae.services` and the layers below. Imported module by module, so that
``genevae diagnose`` loads no torch.
"""
