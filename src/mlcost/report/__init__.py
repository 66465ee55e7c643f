"""Rendering only; nothing here computes a cost.

- ``format``: the one formatting style (counts, durations, bytes, money, energy, CO2e);
- ``view``: a View (lines and tables of formatted cells) and its table/Markdown/CSV/HTML forms;
- ``console``: the console policy and the one JSON path;
- one module per command's renderer (``estimate``, ``plan``, ``tco``, ``allocate``, ``runs``, ``calibrate``,
  ``catalog``, ``env``, ``diff``), each taking the command's ``--json`` object;
- ``html``: the self-contained HTML report and its section registry.
"""
