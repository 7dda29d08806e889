"""Named segments and the population they are cut from: cut-points (``cutpoints``), the presets'
segment rules (``segments``, data in ``presets/``), the population's columns (``population``,
``features``), playbook actions and segment moves (``playbook``, ``moves``) and segment drift
(``drift``). Imports only ``state.customer``."""
