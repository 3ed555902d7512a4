"""nf4: NormalFloat4 (QLoRA, Dettmers et al. 2023): 4-bit indices into 16 levels of a normal
distribution's quantiles in [-1, 1], two per byte (low nibble first), with one absmax scale per
group (``nf4:group=64``), stored in fp16/bf16 in DRAM with the codes (:mod:`eden.formats.group`).
"""

import numpy as np

from eden.formats.base import GROUP_METADATA, Granularity, IntFormat
from eden.formats.registry import register_format

#: The 16 NF4 levels, code 0..15 (bitsandbytes' table, as float32).
NF4_LEVELS = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
], np.float32)
NF4_LEVELS.flags.writeable = False

NF4 = register_format(IntFormat(
    "nf4", np.dtype(np.uint8), 4, numeric=True, signed=False, granularities=(Granularity.GROUP,),
    metadata=GROUP_METADATA[:1], description="NormalFloat4 indices, two per byte, absmax scale per group"))
