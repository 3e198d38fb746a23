#ifndef CZENMLSYSTEM_H
#define CZENMLSYSTEM_H

#include <stddef.h>
#include <sys/types.h>

/// Starts `path` in a new process group (its id is the child's pid), with `stdin_fd`, `stdout_fd`
/// and `stderr_fd` as its standard streams, `cwd` as its working directory, every other
/// descriptor closed, no blocked signals and every signal at its default disposition.
/// Returns 0 and sets `*pid`, or an errno value (for example ENOENT or EACCES for the program).
int czenml_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
                 int stdin_fd, int stdout_fd, int stderr_fd, pid_t *pid);

/// A descriptor that becomes readable when the process exits (pidfd_open), or -1 where the
/// kernel lacks it.
int czenml_pidfd_open(pid_t pid);

/// pipe2(2): a pipe whose ends get `flags` (O_CLOEXEC, O_NONBLOCK) atomically. Returns 0 or -1 with errno.
int czenml_pipe(int fds[2], int flags);

/// An anonymous in-memory file (memfd_create(2), close-on-exec) holding `length` bytes of `data`,
/// positioned at its start. Returns the descriptor, or -1 with errno.
int czenml_memory_file(const char *name, const void *data, size_t length);

/// Opens the first of `candidates` (shared library file names) that loads, with dlopen
/// (RTLD_NOW | RTLD_LOCAL), and resolves `names` into `addresses`, in order. Returns the handle;
/// or NULL, with `error` saying why: "FIRST could not be loaded: REASON" (the first candidate's
/// reason is the telling one), or "FIRST has no function NAME (too old a LABEL?)".
void *czenml_open_library(const char *const *candidates, size_t count, const char *const *names, void **addresses,
                          size_t name_count, const char *label, char *error, size_t error_size);

/// What czenml_open_library does, with the library closed again: 0 when it loads and has every
/// function, else -1 with the reason in `error`. For tests of a loader's file names.
int czenml_probe_library(const char *const *candidates, size_t count, const char *const *names, size_t name_count,
                         const char *label, char *error, size_t error_size);

/// syncfs(2): flushes the file system that holds `fd`. Returns 0 or -1 with errno.
int czenml_syncfs(int fd);

#endif
