// SQLite settings that only the variadic sqlite3_db_config() reaches, which Swift cannot call.
#ifndef CSQLITE_SHIM_H
#define CSQLITE_SHIM_H
#include <sqlite3.h>

/// Leaves the write-ahead log in place when the last connection closes, instead of copying it
/// into the database and syncing both files (SQLite 3.16+). Returns SQLite's result code.
static inline int czenml_sqlite_keep_wal_on_close(sqlite3 *db) {
#ifdef SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE
    return sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
#else
    (void)db;
    return SQLITE_ERROR;
#endif
}

#endif
