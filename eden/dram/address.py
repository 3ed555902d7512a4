"""Where each stored bit lives in DRAM.

A tensor occupies ``nbytes`` consecutive bytes of a partition's address space
starting at ``base_address``. The address space is cut into *row-sized chunks*
(``row_bytes``, the rank-level row: e.g. 8 KiB for a 64-bit DDR4 rank of x8
chips). Each chunk is one DRAM row of one bank; inside it, byte ``b`` holds the
row's bit positions ``8*b .. 8*b+7`` (bit ``k`` of a little-endian byte is
position ``8*b + k``). A bit position within a row is its *bitline*; the row
itself is the *wordline*. Bitlines are grouped per subarray
(``subarray_rows`` consecutive rows of a bank share their bitlines and sense
amplifiers), so a weak bitline is weak in every row of its subarray.

Mapping schemes (chunk index ``c`` -> bank, row):

* ``row_bank`` (RoBaCo, default): consecutive rows go to consecutive banks,
  ``bank = c % banks``, ``row = c // banks``. Spreads a tensor over all banks.
* ``bank_row`` (BaRoCo): a bank fills up first, ``bank = c // rows``,
  ``row = c % rows``.

Finer interleavings (cache-line granular) are not modelled: they change which
bank a byte lands in, not the row/bitline structure that the error models use.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from eden.core.validate import Mode, check_int
from eden.errors import EdenConfigError


class AddressScheme(Mode):
    """Chunk index -> (bank, row) mapping (see the module docstring)."""

    ROW_BANK = "row_bank"
    BANK_ROW = "bank_row"


SCHEMES = AddressScheme.values()


def _geometry(default: int, unit: str, doc: str):
    """A geometry field with its unit and meaning (read by the DRAM profile's ``organization`` section)."""
    return dataclasses.field(default=default, metadata={"unit": unit, "doc": doc})


@dataclasses.dataclass(frozen=True)
class DramOrganization:
    """Geometry of one DRAM partition (a rank, or a group of banks of it).

    ``eden.dram.profiles.Organization`` extends it with the chip width.

    Attributes:
        banks: number of banks (bank groups flattened).
        rows: rows (wordlines) per bank.
        row_bytes: bytes per row at rank level (columns x bus width).
        bus_width_bits: data bus width in bits (informational for mapping).
        subarray_rows: rows that share bitlines (a subarray).
    """

    banks: int = _geometry(16, "", "banks per device (bank groups flattened)")
    rows: int = _geometry(65536, "", "rows (wordlines) per bank")
    row_bytes: int = _geometry(8192, "B", "bytes per rank-level row (columns x bus width / 8)")
    bus_width_bits: int = _geometry(64, "bit", "rank data bus width")
    subarray_rows: int = _geometry(512, "", "rows sharing bitlines (a subarray)")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(DramOrganization):
            check_int(f"{type(self).__name__}.{f.name}", getattr(self, f.name), lo=1)
        if self.row_bytes % 4:
            raise EdenConfigError(f"{type(self).__name__}.row_bytes must be a multiple of 4, got {self.row_bytes}")
        if self.banks * self.rows >= 2**32:
            raise EdenConfigError(f"{type(self).__name__}: banks * rows must be < 2**32 (row ids are 32-bit), "
                                  f"got {self.banks} * {self.rows}")

    def geometry(self) -> DramOrganization:
        """The plain geometry (a :class:`DramOrganization`, whatever subclass ``self`` is)."""
        return DramOrganization(**{f.name: getattr(self, f.name) for f in dataclasses.fields(DramOrganization)})

    @property
    def row_bits(self) -> int:
        return self.row_bytes * 8

    @property
    def capacity_bytes(self) -> int:
        return self.banks * self.rows * self.row_bytes

    @property
    def subarrays(self) -> int:
        return -(-self.rows // self.subarray_rows)


@dataclasses.dataclass(frozen=True)
class AddressMap:
    """Maps byte addresses of a partition to (bank, row, bitline).

    Example:
        >>> am = AddressMap(DramOrganization(banks=8, rows=1024, row_bytes=8192))
        >>> am.locate(8192 * 9 + 3)      # byte 3 of chunk 9
        (1, 1, 24)
    """

    organization: DramOrganization = DramOrganization()
    scheme: AddressScheme = AddressScheme.ROW_BANK

    def __post_init__(self) -> None:
        object.__setattr__(self, "scheme", AddressScheme.coerce(self.scheme, "AddressMap.scheme"))

    def chunk_to_bank_row(self, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bank and row of row-sized chunks (arrays of int64)."""
        org = self.organization
        chunk = np.asarray(chunk, dtype=np.int64)
        if self.scheme is AddressScheme.ROW_BANK:
            return chunk % org.banks, chunk // org.banks
        return chunk // org.rows, chunk % org.rows

    def locate(self, byte_address: int) -> tuple[int, int, int]:
        """(bank, row, first bitline) of one byte address."""
        self.check_range(byte_address, 1)
        org = self.organization
        bank, row = self.chunk_to_bank_row(np.array([byte_address // org.row_bytes]))
        return int(bank[0]), int(row[0]), (byte_address % org.row_bytes) * 8

    def locate_bits(self, base_address: int, bit_index: np.ndarray) -> dict[str, np.ndarray]:
        """Physical location of tensor bits (tensor bit ``i`` = byte ``i // 8``, bit ``i % 8``).

        Returns a dict of int64 arrays: ``bank``, ``row``, ``subarray``, ``bitline``
        (position within the row) and ``row_id`` (``bank * rows + row``, the
        global wordline id).
        """
        org = self.organization
        bit = np.asarray(bit_index, dtype=np.int64) + base_address * 8
        chunk = bit // org.row_bits
        bank, row = self.chunk_to_bank_row(chunk)
        return {
            "bank": bank,
            "row": row,
            "subarray": row // org.subarray_rows,
            "bitline": bit % org.row_bits,
            "row_id": bank * org.rows + row,
        }

    def check_range(self, base_address: int, nbytes: int) -> None:
        cap = self.organization.capacity_bytes
        if base_address < 0:
            raise EdenConfigError(f"base_address must be >= 0, got {base_address}")
        if base_address + nbytes > cap:
            raise EdenConfigError(
                f"tensor of {nbytes} bytes at base address {base_address} does not fit the DRAM "
                f"partition of {cap} bytes ({self.organization}); use a larger organization or a "
                f"smaller base address")


DEFAULT_ADDRESS_MAP = AddressMap()
