"""CALVIN's own env (mees/calvin_env, used from a checkout) behind our interface, and its oracle.

- :mod:`envs.calvin.official.checkout`: finding and checking the checkout (``CALVIN_ENV_DIR``).
- :mod:`envs.calvin.official.env`: ``CalvinOfficialEnv``, CALVIN's ``PlayTableSimEnv`` with
  our observations, actions, symbolic resets and ``begin_subtask``, judged by CALVIN's ``Tasks``;
  :mod:`~envs.calvin.official.reset` (CALVIN's start of a symbolic state) and
  :mod:`~envs.calvin.official.robot` (its robot on its own PyBullet client) serve it.
- :mod:`envs.calvin.official.oracle`: the differential check of our oracle against CALVIN's
  ``Tasks``, on :mod:`~envs.calvin.official.pairs` converted by :mod:`~envs.calvin.official.info`.
- :mod:`envs.calvin.official.objects`: which body and link of each env is which object, and our
  table put in CALVIN's state (what ``bench.fidelity`` measures on).
"""
