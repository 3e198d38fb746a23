#ifndef CZENMLSQLITE_H
#define CZENMLSQLITE_H

/// Tells the connection `db` (a `sqlite3 *`) not to checkpoint the WAL when it closes
/// (SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE). Swift cannot ask for it itself: sqlite3_db_config is
/// variadic. Returns an SQLite result code.
int czenml_sqlite_skip_checkpoint_on_close(void *db);

#endif
