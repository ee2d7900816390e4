"""The one table `common` keeps: what is known of every stored file (`common.files`)."""

from piccolo.columns import BigInt, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.constraints import Check
from piccolo.table import Table


class StoredFile(Table, tablename="common_stored_file"):
    """A file kept under `DATA_DIR/files/` by the sha256 of its content (hex): the same content is
    one row and one file, whoever stored it and however often. `content_type` is what the shop
    recognised from the content, never what a client said. Rows are never updated; what a file
    is for, and who may read it, is in the rows that name it (a product's photo, an invoice)."""

    sha256 = Varchar(length=64, unique=True)
    size = BigInt()
    content_type = Varchar(length=100)
    created_at = Timestamptz(default=TimestamptzNow())

    stored_file_size_non_negative = Check(size >= 0)
