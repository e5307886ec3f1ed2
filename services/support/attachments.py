"""What a support attachment may be: sizes, the content-type allow-list, safe file names.

Pure code (no I/O), used twice: by the gateway, which refuses a file before it travels
anywhere (413 too large, 415 a type not allowed or not what it claims to be), and by the
support service, which checks again whatever it is asked to store.

A type is decided by the file's first bytes (the ``filetype`` package), never by its name
or by what the client declares alone: the declared type must agree with the detected one.
Plain text has no magic bytes; it is text when no binary type is detected and it decodes
as UTF-8 without NUL bytes. SVG, HTML and anything executable are deliberately absent
(a download of them could run script in the panel's origin or on the customer's machine).
"""

import re
import unicodedata

import filetype

from common.errors import PayloadTooLarge, UnsupportedMediaType

MIB = 1024 * 1024
MAX_FILE_BYTES = 10 * MIB
MAX_MESSAGE_BYTES = 25 * MIB
MAX_FILES = 10
# Room for the text fields and the multipart framing above the files themselves.
FORM_OVERHEAD_BYTES = 1 * MIB
MAX_REQUEST_BYTES = MAX_MESSAGE_BYTES + FORM_OVERHEAD_BYTES
SNIFF_BYTES = 8192

# canonical type -> a short description (the allow-list)
ALLOWED_TYPES = {
    "image/png": "PNG image",
    "image/jpeg": "JPEG image",
    "image/gif": "GIF image",
    "image/webp": "WebP image",
    "application/pdf": "PDF document",
    "application/zip": "ZIP archive",
    "text/plain": "plain text (logs included)",
    "text/csv": "CSV text",
}
TEXT_TYPES = frozenset({"text/plain", "text/csv"})
# What clients send for the same thing.
ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "application/x-zip-compressed": "application/zip",
    "application/x-zip": "application/zip",
    "text/x-log": "text/plain",
    "application/csv": "text/csv",
    "text/comma-separated-values": "text/csv",
}
# A declared type that says nothing: the detected type decides alone.
UNSPECIFIC = frozenset({"", "application/octet-stream", "binary/octet-stream"})


def normalise(declared):
    """``image/JPG; charset=x`` → ``image/jpeg``."""
    base = (declared or "").split(";", 1)[0].strip().lower()
    return ALIASES.get(base, base)


def looks_like_text(head):
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut by the end of the sniffed window is still text.
        return error.start >= len(head) - 3 and len(head) >= SNIFF_BYTES
    return True


def detect(head):
    """The type the first bytes say, or None when they are not recognised."""
    detected = filetype.guess_mime(bytes(head[:SNIFF_BYTES])) if head else None
    if detected is None and head and looks_like_text(head[:SNIFF_BYTES]):
        return "text/plain"
    return detected


def classify(filename, declared, head):
    """The canonical type of a file whose first bytes are ``head``, declared as
    ``declared``; ``UnsupportedMediaType`` (naming the file) when it is not allowed or the
    bytes disagree with the declaration."""
    declared = normalise(declared)
    detected = detect(head)
    if declared not in UNSPECIFIC and declared not in ALLOWED_TYPES:
        raise UnsupportedMediaType(
            f"{filename}: files of type {declared} are not accepted.",
            fields={"attachments": [f"{filename}: {declared} is not accepted; allowed: {allowed_list()}."]})
    if detected is None or (detected not in ALLOWED_TYPES and detected != "text/plain"):
        raise UnsupportedMediaType(
            f"{filename}: the content is not an accepted type.",
            fields={"attachments": [(f"{filename}: the content ({detected or 'unknown'}) is not accepted; "
                                     f"allowed: {allowed_list()}.")]})
    if declared in UNSPECIFIC:
        return detected
    if declared in TEXT_TYPES and detected == "text/plain":
        return declared
    if declared != detected:
        raise UnsupportedMediaType(
            f"{filename}: declared as {declared} but the content is {detected}.",
            fields={"attachments": [f"{filename}: declared as {declared} but the content is {detected}."]})
    return declared


def allowed_list():
    return ", ".join(ALLOWED_TYPES)


def check_file_size(filename, size):
    if size > MAX_FILE_BYTES:
        raise PayloadTooLarge(f"{filename} is larger than {MAX_FILE_BYTES // MIB} MiB.",
                              fields={"attachments": [f"{filename}: at most {MAX_FILE_BYTES // MIB} MiB per file."]})


def check_message_size(total):
    if total > MAX_MESSAGE_BYTES:
        raise PayloadTooLarge(f"The attachments are larger than {MAX_MESSAGE_BYTES // MIB} MiB together.",
                              fields={"attachments": [f"At most {MAX_MESSAGE_BYTES // MIB} MiB per message."]})


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f\"\\/:*?<>|]+")


def safe_filename(name, fallback="attachment"):
    """A display name without directories, control characters or characters that are
    unsafe in a file name; at most 200 characters (keeping the extension)."""
    name = unicodedata.normalize("NFC", str(name or ""))
    name = re.split(r"[\\/]", name)[-1]
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    if not name:
        return fallback
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 200 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 16 else name[:200]
    return name
