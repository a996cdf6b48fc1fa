"""Services the commands share: a fitted model (load, save, encode), fitting, reading
and preparing a run's input, a run folder's files, and the evaluation measurements.

Imports run one way: ``commands`` use these; these use ``diagnosis``, ``train``,
``model``, ``data``, ``history``, ``plot`` and ``report``, never a command. The names
are imported from their modules (``genevae.services.fitted`` ...), not from here.
"""
