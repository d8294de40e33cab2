"""What a template's bytes really are, checked against the format it was registered with.

A :class:`Sniffer` watches a stream go by (it keeps only the first 64 KiB and the last 512 bytes) and
then names the format and virtual size:

- QCOW2: magic ``QFI\\xfb``, version 2 or 3, virtual size from the header. A qcow2 image naming a
  backing file, or an external data file (incompatible feature bit 2 or a data-file header
  extension), is refused: such an image makes the host open a file of the attacker's choosing
  (CVE-2024-45219, CVE-2024-50386).
- VHD: the 512-byte footer starting ``conectix`` at the end of the file (read back from the file by
  :meth:`Sniffer.settle` when a download moved the body in the kernel), current size at offset 48;
  a differencing VHD (disk type 4) has a parent image and is refused for the same reason.
- ISO 9660: a primary volume descriptor (type 1, ``CD001``) at 32 KiB; size = blocks x block size.
- VHDX, VMDK, VDI, OVA/TAR, ZIP: recognised by their signatures, so none of them passes as RAW.
- Compressed files (gzip, bzip2, xz, zstd): refused with a message saying so. CloudStack's
  registerTemplate takes the formats of Storage.ImageFormat, none of which is a compressed disk image.
- RAW: anything else; its virtual size is its length.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

HEAD = 64 * 1024
TAIL = 512
ISO_PVD = 32 * 1024

QCOW2_MAGIC = b"QFI\xfb"
QCOW2_EXT_DATA_FILE = 0x44415441
QCOW2_INCOMPAT_DATA_FILE = 1 << 2

COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))


class FormatError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ImageInfo:
    format: str  # QCOW2, RAW, VHD, ISO, VHDX, VMDK, VDI, TAR, ZIP
    virtual_size: int
    physical_size: int


class Sniffer:
    """Feed it every chunk of a file, then :meth:`result`."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = b""
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        if len(self.head) < HEAD:
            self.head += chunk[:HEAD - len(self.head)]
        self.tail = (self.tail + chunk)[-TAIL:] if len(chunk) < TAIL else bytes(chunk[-TAIL:])
        self.size += len(chunk)

    def wrap(self, chunks: Iterable[bytes], declared: str | None = None) -> Iterator[bytes]:
        """Pass ``chunks`` through while feeding them to the sniffer. With ``declared``, what the first
        64 KiB already tell is checked as soon as they have passed (a qcow2 header naming a backing
        file, a compressed file, a qcow2 registered as something else), so a bad file is not fetched
        to its end."""
        early = declared is not None
        for chunk in chunks:
            self.feed(chunk)
            if early and len(self.head) >= HEAD:
                early = False
                self.early_check(str(declared))
            yield chunk

    def early_check(self, declared: str) -> None:
        head = bytes(self.head)
        if head.startswith(QCOW2_MAGIC):
            check(declared, ImageInfo("QCOW2", qcow2_virtual_size(head), self.size))
        for magic, name in COMPRESSED:
            if head.startswith(magic):
                identify(head, b"", self.size)  # raises with the message

    def settle(self, fd: int) -> None:
        """Take the size and the last bytes from the complete file just written (open descriptor ``fd``),
        for a file some of whose bytes went into it without passing the sniffer (a zero-copy download);
        the head has passed it (downloads splice only after the first chunk)."""
        size = os.fstat(fd).st_size
        self.tail = os.pread(fd, TAIL, size - TAIL) if size >= TAIL else os.pread(fd, size, 0)
        self.size = size

    def result(self) -> ImageInfo:
        return identify(bytes(self.head), self.tail, self.size)


def identify(head: bytes, tail: bytes, size: int) -> ImageInfo:
    if size == 0:
        raise FormatError("The file is empty")
    if head.startswith(QCOW2_MAGIC):
        return ImageInfo("QCOW2", qcow2_virtual_size(head), size)
    for magic, name in COMPRESSED:
        if head.startswith(magic):
            raise FormatError(f"The file is {name}-compressed; compressed images are not accepted: register the"
                              " uncompressed image")
    if len(tail) == TAIL and tail.startswith(b"conectix"):
        return ImageInfo("VHD", vhd_virtual_size(tail), size)
    if head.startswith(b"conectix"):  # a dynamic VHD's footer copy whose trailing footer is missing
        raise FormatError("The file starts with a VHD footer copy but has no VHD footer at its end: it is"
                          " truncated")
    if head.startswith(b"vhdxfile"):
        return ImageInfo("VHDX", 0, size)
    if head.startswith(b"KDMV") or head.startswith(b"# Disk DescriptorFile"):
        return ImageInfo("VMDK", 0, size)
    if len(head) >= 68 and struct.unpack_from("<I", head, 64)[0] == 0xBEDA107F:
        return ImageInfo("VDI", 0, size)
    if head.startswith(b"PK\x03\x04"):
        return ImageInfo("ZIP", 0, size)
    if len(head) >= 262 and head[257:262] == b"ustar":
        return ImageInfo("TAR", 0, size)
    if len(head) >= ISO_PVD + 136 and head[ISO_PVD] == 1 and head[ISO_PVD + 1:ISO_PVD + 6] == b"CD001":
        blocks = struct.unpack_from("<I", head, ISO_PVD + 80)[0]
        block_size = struct.unpack_from("<H", head, ISO_PVD + 128)[0]
        return ImageInfo("ISO", blocks * block_size, size)
    return ImageInfo("RAW", size, size)


def qcow2_virtual_size(head: bytes) -> int:
    if len(head) < 72:
        raise FormatError("The qcow2 header is truncated")
    version, backing_offset, backing_size = struct.unpack_from(">IQI", head, 4)
    if version not in (2, 3):
        raise FormatError(f"Unsupported qcow2 version {version}")
    if backing_offset != 0 or backing_size != 0:
        name = ""
        if backing_offset and backing_offset + backing_size <= len(head):
            name = head[backing_offset:backing_offset + backing_size].decode("utf-8", "replace")
        raise FormatError("The qcow2 image refers to a backing file" + (f" ({name})" if name else "")
                          + "; images with backing files are refused (CVE-2024-45219)")
    virtual_size = struct.unpack_from(">Q", head, 24)[0]
    ext_start = 72
    if version == 3:
        if len(head) < 104:
            raise FormatError("The qcow2 v3 header is truncated")
        incompatible = struct.unpack_from(">Q", head, 72)[0]
        if incompatible & QCOW2_INCOMPAT_DATA_FILE:
            raise FormatError("The qcow2 image uses an external data file; such images are refused"
                              " (CVE-2024-45219)")
        ext_start = struct.unpack_from(">I", head, 100)[0]
    pos = ext_start
    while pos + 8 <= len(head):
        ext_type, ext_len = struct.unpack_from(">II", head, pos)
        if ext_type == 0:
            break
        if ext_type == QCOW2_EXT_DATA_FILE:
            raise FormatError("The qcow2 image names an external data file; such images are refused"
                              " (CVE-2024-45219)")
        pos += 8 + ((ext_len + 7) & ~7)
    return int(virtual_size)


def vhd_virtual_size(footer: bytes) -> int:
    current_size = struct.unpack_from(">Q", footer, 48)[0]
    disk_type = struct.unpack_from(">I", footer, 60)[0]
    if disk_type == 4:
        raise FormatError("The VHD is a differencing disk with a parent image; such images are refused")
    if disk_type not in (2, 3):
        raise FormatError(f"Unsupported VHD disk type {disk_type}")
    return int(current_size)


#: Declared formats whose bytes may be of another detected format.
COMPATIBLE = {"RAW": {"RAW", "ISO"}, "OVA": {"TAR"}, "TAR": {"TAR"}}


def check(declared: str, info: ImageInfo) -> None:
    """Refuse bytes that are not what the template says it is."""
    want = declared.upper()
    allowed = COMPATIBLE.get(want, {want})
    if info.format not in allowed:
        what = "an ISO 9660 image" if info.format == "ISO" else f"a {info.format} image"
        raise FormatError(f"The file is {what}, not {want} as registered (parameter format)")


__all__ = ["FormatError", "ImageInfo", "Sniffer", "check", "identify"]
