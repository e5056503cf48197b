"""A run's identity: the hash of the config keys that decide what it computes.

Which keys those are is declared once, on the config fields (``emorl.config.KeyRole``): ``run_key`` hashes
every RESULT and RESUMABLE key, ``cell_key`` the same without the seed (one table cell), and a resume may
change only RESUMABLE and OPERATIONAL keys. A key added later is hashed only away from its neutral value
(``emorl.config.added_later``), so adding a key never changes the identity of the runs made before it.
The trainer, the entry points and the grid all use these.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from emorl.config import ExperimentConfig, KeyRole, flatten_config, key_roles, neutral_values

SEED_KEY = "training.seed"
IDENTITY_KEYS = frozenset(key for key, role in key_roles().items() if role is not KeyRole.OPERATIONAL)
NEUTRAL_VALUES = neutral_values()
CHANGEABLE_ON_RESUME = frozenset(key for key, role in key_roles().items() if role is not KeyRole.RESULT)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def identity_key(config: ExperimentConfig, *, with_seed: bool = True) -> str:
    """sha256 (16 hex) of the config's identity keys: the run_key, or without the seed the cell_key."""
    kept = {
        key: value
        for key, value in flatten_config(config.to_dict()).items()
        if key in IDENTITY_KEYS
        and (with_seed or key != SEED_KEY)
        and not (key in NEUTRAL_VALUES and value == NEUTRAL_VALUES[key])
    }
    return hashlib.sha256(canonical_json(kept).encode()).hexdigest()[:16]
