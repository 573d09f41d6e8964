// crisp's spawn helper, compiled: the same wire protocol and behaviour as the perl helper in
// spawn-helper.ts (read that file's header first), at a fraction of its cost per command.
//
// Why it exists: the perl helper forks, and perl's reference counting writes to nearly every
// page it reads, so both the helper and each child pay copy-on-write faults for every command
// (measured here: ~3 ms of the helper's CPU per command, more in the child before its exec).
// This one starts programs with posix_spawn, which glibc implements with CLONE_VM|CLONE_VFORK:
// no page tables are copied and nothing is faulted. Only a pod's namespace pin (mode 4) and a
// read inside a pod's namespaces (mode 5) fork, and a fork of this small process costs little.
//
// Built by scripts/build-spawn-helper.sh into dist/bin when a C compiler is present; the daemon
// falls back to the perl helper otherwise. Single-threaded: one poll loop over the requests,
// the children's pipes, conmon lifelines and a self-pipe written by SIGCHLD.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum { RUN = 0, CONMON = 1, MOUNT = 2, UMOUNT = 3, PIN = 4, READ_INSIDE = 5 };
#define INHERIT_ENV 0xffffffffu

typedef struct {
  char *data;
  size_t len, cap;
} buf_t;

static void buf_add(buf_t *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) abort();
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
}
static void buf_drop(buf_t *b, size_t n) {
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}
static void buf_free(buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
static void put_u32(buf_t *b, uint32_t v) {
  unsigned char x[4] = {v >> 24, v >> 16, v >> 8, v};
  buf_add(b, x, 4);
}
static void put_str(buf_t *b, const char *p, size_t n) {
  put_u32(b, (uint32_t)n);
  buf_add(b, p, n);
}

typedef struct job {
  struct job *next;
  uint32_t id;
  int mode;
  pid_t pid;
  int exited, status, timedout;
  int64_t deadline; /* ms, monotonic; 0: none */
  int in_fd, out_fd, err_fd, sync_fd;
  buf_t in, out, err, sync;
  size_t in_off;
  int syncdone;
  int slot[4]; /* where in, out, err and sync sit in this turn's poll set (-1: not there) */
  char why[256];
} job_t;

typedef struct {
  uint32_t id;
  int fd;
} lifeline_t;

static job_t *jobs;
static lifeline_t *lifelines;
static size_t nlifelines, caplifelines;
static buf_t inbuf, outq;
static int wake_r, wake_w, home_fd;
/* The daemon is gone but a conmon it launched has not reported yet: see main. */
static int orphaned;

static int conmon_launching(void) {
  for (job_t *j = jobs; j; j = j->next)
    if (j->mode == CONMON) return 1;
  return 0;
}

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}
static void nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }
static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static void reply(uint32_t id, int32_t code, int32_t sig, int timedout, buf_t *out, buf_t *err, const char *why, const char *sync, size_t synclen) {
  buf_t body = {0};
  unsigned char kind = 0, to = timedout ? 1 : 0;
  buf_add(&body, &kind, 1);
  put_u32(&body, id);
  put_u32(&body, (uint32_t)code);
  put_u32(&body, (uint32_t)sig);
  buf_add(&body, &to, 1);
  put_str(&body, out ? out->data : "", out ? out->len : 0);
  put_str(&body, err ? err->data : "", err ? err->len : 0);
  put_str(&body, why, strlen(why));
  put_str(&body, sync, synclen);
  put_u32(&outq, (uint32_t)body.len);
  buf_add(&outq, body.data, body.len);
  buf_free(&body);
}
static void reply_text(uint32_t id, int32_t code, const char *err, const char *why) {
  buf_t e = {0};
  buf_add(&e, err, strlen(err));
  reply(id, code, 0, 0, NULL, &e, why, "", 0);
  buf_free(&e);
}
static void lifeline_closed(uint32_t id) {
  unsigned char kind = 1;
  put_u32(&outq, 5);
  buf_add(&outq, &kind, 1);
  put_u32(&outq, id);
}

/* A request, parsed; strings are NUL-terminated copies into one block. */
typedef struct {
  uint32_t id, timeout, argc, envc;
  int mode;
  char *file, *cwd, **argv, **envp, *input;
  size_t inputlen;
  uint32_t cgroupc;
  char **cgroups; /* conmon: the cgroup directories it is moved into before it may run */
} request_t;

static int take_u32(const char **p, const char *end, uint32_t *v) {
  if (end - *p < 4) return -1;
  const unsigned char *u = (const unsigned char *)*p;
  *v = (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
  *p += 4;
  return 0;
}
static char *take_str(const char **p, const char *end, size_t *len) {
  uint32_t n;
  if (take_u32(p, end, &n) || (size_t)(end - *p) < n) return NULL;
  char *s = malloc(n + 1);
  if (!s) abort();
  memcpy(s, *p, n);
  s[n] = 0;
  *p += n;
  if (len) *len = n;
  return s;
}
static void free_request(request_t *r) {
  free(r->file);
  free(r->cwd);
  free(r->input);
  for (uint32_t i = 0; r->argv && r->argv[i]; i++) free(r->argv[i]);
  for (uint32_t i = 0; r->envp && r->envp[i]; i++) free(r->envp[i]);
  for (uint32_t i = 0; r->cgroups && i < r->cgroupc; i++) free(r->cgroups[i]);
  free(r->argv);
  free(r->envp);
  free(r->cgroups);
}
static int parse(const char *p, const char *end, request_t *r) {
  memset(r, 0, sizeof *r);
  if (take_u32(&p, end, &r->id) || end - p < 1) return -1;
  r->mode = (unsigned char)*p++;
  if (take_u32(&p, end, &r->timeout) || !(r->file = take_str(&p, end, NULL)) || !(r->cwd = take_str(&p, end, NULL)) || take_u32(&p, end, &r->argc)) return -1;
  if (r->argc > (size_t)(end - p) / 4) return -1;
  r->argv = calloc(r->argc + 2, sizeof(char *));
  if (!r->argv) abort();
  r->argv[0] = strdup(r->file);
  for (uint32_t i = 0; i < r->argc; i++)
    if (!(r->argv[i + 1] = take_str(&p, end, NULL))) return -1;
  if (take_u32(&p, end, &r->envc)) return -1;
  if (r->envc != INHERIT_ENV) {
    if (r->envc > (size_t)(end - p) / 4) return -1;
    r->envp = calloc(r->envc + 1, sizeof(char *));
    if (!r->envp) abort();
    for (uint32_t i = 0; i < r->envc; i++)
      if (!(r->envp[i] = take_str(&p, end, NULL))) return -1;
  }
  if (!(r->input = take_str(&p, end, &r->inputlen))) return -1;
  if (take_u32(&p, end, &r->cgroupc) || r->cgroupc > (size_t)(end - p) / 4) return -1;
  r->cgroups = calloc(r->cgroupc + 1, sizeof(char *));
  if (!r->cgroups) abort();
  for (uint32_t i = 0; i < r->cgroupc; i++)
    if (!(r->cgroups[i] = take_str(&p, end, NULL))) return -1;
  return 0;
}

/* mkdir -p: the deepest first, its parents only when it says they are missing. */
static int make_dirs(char *path) {
  if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
  char *slash = strrchr(path, '/');
  if (errno != ENOENT || !slash || slash == path) return -1;
  *slash = 0;
  int made = make_dirs(path);
  *slash = '/';
  return made == 0 && (mkdir(path, 0755) == 0 || errno == EEXIST) ? 0 : -1;
}

/* Moves `pid` into cgroup directory `dir`, making the path when missing; -1 with errno set. */
static int into_cgroup(const char *dir, pid_t pid) {
  char path[4096];
  size_t n = strlen(dir);
  if (n + sizeof "/cgroup.procs" > sizeof path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(path, dir, n + 1);
  if (make_dirs(path) != 0) return -1;
  memcpy(path + n, "/cgroup.procs", sizeof "/cgroup.procs");
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char text[32];
  int len = snprintf(text, sizeof text, "%d", (int)pid);
  int ok = write(fd, text, (size_t)len) == len;
  int saved = errno;
  close(fd);
  errno = saved;
  return ok ? 0 : -1;
}

/* mount(2) and umount2(2), here: they return at once. */
static void sysop(request_t *r) {
  buf_t err = {0};
  char line[8192];
  if (r->mode == MOUNT) {
    if (r->argc < 4) {
      reply_text(r->id, 32, "mount: missing arguments\n", "");
      return;
    }
    const char *src = r->argv[1], *target = r->argv[2], *data = r->argv[4];
    unsigned long flags = strtoul(r->argv[3], NULL, 10);
    if (*r->cwd && chdir(r->cwd) != 0) {
      snprintf(line, sizeof line, "chdir %s: %s\n", r->cwd, strerror(errno));
      reply_text(r->id, 32, line, "");
      return;
    }
    if (mount(src, target, r->file, flags, *data ? data : NULL) != 0) {
      snprintf(line, sizeof line, "mount %s: %s\n", target, strerror(errno));
      buf_add(&err, line, strlen(line));
    }
    if (*r->cwd && fchdir(home_fd) != 0) abort();
  } else {
    for (uint32_t i = 1; i <= r->argc; i++) {
      if (umount2(r->argv[i], 0) != 0) {
        snprintf(line, sizeof line, "umount %s: %s\n", r->argv[i], strerror(errno));
        buf_add(&err, line, strlen(line));
      }
    }
  }
  reply(r->id, err.len ? 32 : 0, 0, 0, NULL, &err, "", "", 0);
  buf_free(&err);
}

/* In a forked child: new namespaces, the hostname and lo in them, each pinned by a bind mount
   of this process's namespace file (the mount namespace is the host's, so the pins show there). */
static void failed(const char *what) {
  dprintf(2, "%s: %s\n", what, strerror(errno));
  _exit(1);
}
/* failed() for a step described by a format; the errno reported is the step's, read first. */
__attribute__((format(printf, 1, 2))) static void failedf(const char *fmt, ...) {
  int err = errno;
  char what[4200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  errno = err;
  failed(what);
}
/* The CLONE_NEW* bit of a kind=path argument's kind; exits when it is none crisp pins. */
static int namespace_bit(const char *k) {
  if (!strncmp(k, "net=", 4)) return CLONE_NEWNET;
  if (!strncmp(k, "ipc=", 4)) return CLONE_NEWIPC;
  if (!strncmp(k, "uts=", 4)) return CLONE_NEWUTS;
  dprintf(2, "unknown namespace %.*s\n", (int)strcspn(k, "="), k);
  _exit(1);
}
static void pin(request_t *r) {
  int flags = 0;
  for (uint32_t i = 3; i <= r->argc; i++) flags |= namespace_bit(r->argv[i]);
  if (unshare(flags) != 0) failed("unshare");
  const char *hostname = r->argc >= 1 ? r->argv[1] : "";
  if (*hostname && sethostname(hostname, strlen(hostname)) != 0) failed("sethostname");
  if (r->argc >= 2 && !strcmp(r->argv[2], "1")) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) failed("socket");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) failed("SIOCGIFFLAGS lo");
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) failed("SIOCSIFFLAGS lo");
  }
  for (uint32_t i = 3; i <= r->argc; i++) {
    char src[32];
    const char *eq = strchr(r->argv[i], '=');
    snprintf(src, sizeof src, "/proc/self/ns/%.*s", (int)(eq - r->argv[i]), r->argv[i]);
    if (mount(src, eq + 1, NULL, MS_BIND, NULL) != 0) failedf("bind %s on %s", src, eq + 1);
  }
  _exit(0);
}

/* In a forked child: into each pinned namespace (kind=path; setns checks that the file holds a
   namespace of that kind), then the request's file copied to stdout as a process there reads it:
   /proc/self/net/dev gives that network namespace's counters, with no program started. */
static void read_inside(request_t *r) {
  for (uint32_t i = 1; i <= r->argc; i++) {
    int bit = namespace_bit(r->argv[i]);
    int fd = open(strchr(r->argv[i], '=') + 1, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, bit) != 0) failedf("entering %s", r->argv[i]);
    close(fd);
  }
  int fd = open(r->file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) failedf("open %s", r->file);
  char b[8192];
  ssize_t n;
  while ((n = read(fd, b, sizeof b)) > 0)
    if (write(1, b, (size_t)n) != n) failed("write");
  if (n < 0) failedf("read %s", r->file);
  _exit(0);
}

/* execvp's search, in the child's PATH (the request's environment, or ours). */
static int resolve(request_t *r, char *path, size_t size) {
  if (strchr(r->file, '/')) {
    snprintf(path, size, "%s", r->file);
    return 0;
  }
  const char *search = NULL;
  if (r->envp) {
    for (char **e = r->envp; *e; e++)
      if (!strncmp(*e, "PATH=", 5)) search = *e + 5;
  } else search = getenv("PATH");
  if (!search) search = "/bin:/usr/bin";
  int err = ENOENT;
  for (const char *p = search;; p++) {
    const char *end = strchrnul(p, ':');
    snprintf(path, size, "%.*s%s%s", (int)(end - p), p, end == p ? "" : "/", r->file);
    if (access(path, X_OK) == 0) return 0;
    if (errno == EACCES) err = EACCES;
    if (!*end) break;
    p = end;
  }
  return err;
}

static void errno_text(int err, char *out, size_t size) {
  snprintf(out, size, "%s", err == ENOENT ? "ENOENT" : err == EACCES ? "EACCES" : strerror(err));
}

static void start(request_t *r) {
  if (r->mode == MOUNT || r->mode == UMOUNT) {
    sysop(r);
    return;
  }
  int in[2], out[2] = {-1, -1}, err[2], sync[2] = {-1, -1}, go[2] = {-1, -1};
  if (pipe2(in, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || (r->mode != CONMON && pipe2(out, O_CLOEXEC)) ||
      (r->mode == CONMON && (pipe2(sync, O_CLOEXEC) || pipe2(go, O_CLOEXEC)))) {
    char why[300];
    snprintf(why, sizeof why, "pipe: %s", strerror(errno));
    reply_text(r->id, -1, "", why);
    return;
  }
  job_t *j = calloc(1, sizeof *j);
  if (!j) abort();
  j->id = r->id;
  j->mode = r->mode;
  j->sync_fd = -1;
  j->out_fd = -1;
  j->deadline = r->timeout ? now_ms() + r->timeout : 0;
  pid_t pid = -1;
  int spawn_err = 0;
  char path[4096];
  struct stat st;
  if (r->mode == PIN || r->mode == READ_INSIDE) {
    pid = fork();
    if (pid == 0) {
      signal(SIGPIPE, SIG_DFL);
      signal(SIGCHLD, SIG_DFL);
      dup2(in[0], 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
      close_range(3, ~0U, 0); // no other command's pipe stays open for as long as this child lives
      if (r->mode == PIN) pin(r);
      else read_inside(r);
    }
    if (pid < 0) snprintf(j->why, sizeof j->why, "fork: %s", strerror(errno));
  } else if (*r->cwd && (stat(r->cwd, &st) != 0 ? (spawn_err = errno) : !S_ISDIR(st.st_mode) ? (spawn_err = ENOTDIR) : 0)) {
    snprintf(j->why, sizeof j->why, "chdir %s: %s", r->cwd, strerror(spawn_err));
  } else if ((spawn_err = resolve(r, path, sizeof path)) != 0) {
    errno_text(spawn_err, j->why, sizeof j->why);
  } else {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, dfl;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGCHLD);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dfl);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    if (r->mode == CONMON) {
      // conmon: its own session, the sync pipe as fd 3 and the start pipe as fd 4 (every pipe
      // here is numbered above 4: see main, so neither placement overwrites the other)
      flags |= POSIX_SPAWN_SETSID;
      posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
      posix_spawn_file_actions_adddup2(&fa, sync[1], 3);
      posix_spawn_file_actions_adddup2(&fa, go[0], 4);
    } else {
      posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    }
    if (*r->cwd) posix_spawn_file_actions_addchdir_np(&fa, r->cwd);
    posix_spawnattr_setflags(&attr, flags);
    spawn_err = posix_spawn(&pid, path, &fa, &attr, r->argv, r->envp ? r->envp : environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (spawn_err) {
      pid = -1;
      errno_text(spawn_err, j->why, sizeof j->why);
    }
  }
  close(in[0]);
  close(err[1]);
  close_fd(&out[1]);
  close_fd(&sync[1]);
  close_fd(&go[0]);
  if (pid < 0) {
    // not started: the answer is the reason, as the perl helper's child reports it (exit 127)
    reply(r->id, 127, 0, 0, NULL, NULL, j->why, "", 0);
    close(in[1]);
    close(err[0]);
    close_fd(&out[0]);
    close_fd(&sync[0]);
    close_fd(&go[1]);
    free(j);
    return;
  }
  j->pid = pid;
  if (r->mode == CONMON) {
    // into its cgroups before it may run; if it cannot be, it never runs (the answer says why)
    for (uint32_t i = 0; i < r->cgroupc && !j->why[0]; i++) {
      if (into_cgroup(r->cgroups[i], pid) != 0) {
        snprintf(j->why, sizeof j->why, "moving conmon into %s: %s", r->cgroups[i], strerror(errno));
        kill(pid, SIGKILL);
      }
    }
    if (!j->why[0]) {
      // the best score this process may give (without CAP_SYS_RESOURCE the kernel refuses -1000)
      char oom[64];
      snprintf(oom, sizeof oom, "/proc/%d/oom_score_adj", pid);
      int fd = open(oom, O_WRONLY | O_CLOEXEC);
      if (fd >= 0) {
        if (write(fd, "-1000", 5) < 0) { /* refused: conmon keeps the score it inherited */ }
        close(fd);
      }
      if (write(go[1], "", 1) < 0) { /* conmon already gone: its exit says so */ }
    }
    close(go[1]);
    j->sync_fd = sync[0];
    nonblock(j->sync_fd);
  } else {
    j->out_fd = out[0];
    nonblock(j->out_fd);
  }
  j->err_fd = err[0];
  nonblock(j->err_fd);
  if (r->inputlen) {
    j->in_fd = in[1];
    nonblock(j->in_fd);
    buf_add(&j->in, r->input, r->inputlen);
  } else {
    close(in[1]);
    j->in_fd = -1;
  }
  j->next = jobs;
  jobs = j;
}

/* Reads what is there; returns 0 at the end of the pipe (or an error), 1 otherwise. */
static int drain(int fd, buf_t *into) {
  char chunk[65536];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n > 0) {
      if (into) buf_add(into, chunk, (size_t)n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && errno == EAGAIN ? 1 : 0;
  }
}

static void on_sigchld(int sig) {
  (void)sig;
  int saved = errno;
  if (write(wake_w, "x", 1) < 0) { /* full: a wake-up is already pending */ }
  errno = saved;
}

/* The job's answer, when it is complete; frees it. Returns 1 when it was answered. */
static int finish(job_t *j) {
  if (!j->exited) return 0;
  if (j->mode == CONMON) {
    // conmon's report: its intermediate process has exited and the sync pipe said something or closed
    if (!j->syncdone && !j->timedout && j->status == 0) return 0;
  } else if (j->out_fd >= 0 || j->err_fd >= 0) return 0;
  if (j->err_fd >= 0) drain(j->err_fd, &j->err);
  close_fd(&j->err_fd);
  close_fd(&j->in_fd);
  close_fd(&j->sync_fd);
  close_fd(&j->out_fd);
  int code = WIFSIGNALED(j->status) ? -1 : WEXITSTATUS(j->status);
  int sig = WIFSIGNALED(j->status) ? WTERMSIG(j->status) : 0;
  size_t synclen = 0;
  while (synclen < j->sync.len && j->sync.data[synclen] != '\n') synclen++;
  reply(j->id, code, sig, j->timedout, &j->out, &j->err, j->why, j->sync.data ? j->sync.data : "", synclen);
  buf_free(&j->in);
  buf_free(&j->out);
  buf_free(&j->err);
  buf_free(&j->sync);
  return 1;
}

static void add_lifeline(uint32_t id, int fd) {
  if (nlifelines == caplifelines) {
    caplifelines = caplifelines ? caplifelines * 2 : 64;
    lifelines = realloc(lifelines, caplifelines * sizeof *lifelines);
    if (!lifelines) abort();
  }
  lifelines[nlifelines++] = (lifeline_t){id, fd};
}

int main(void) {
  // fds 3 and 4 are taken before any pipe is made, so conmon's placements never collide
  for (;;) {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 1;
    if (fd > 4) {
      close(fd);
      break;
    }
  }
  home_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int wake[2];
  if (home_fd < 0 || pipe2(wake, O_CLOEXEC | O_NONBLOCK)) return 1;
  wake_r = wake[0];
  wake_w = wake[1];
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigchld;
  sa.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  nonblock(0);
  nonblock(1);

  struct pollfd *fds = NULL;
  size_t capfds = 0;
  for (;;) {
    size_t njobs = 0;
    for (job_t *j = jobs; j; j = j->next) njobs++;
    size_t need = 3 + njobs * 4 + nlifelines;
    if (need > capfds) {
      capfds = need * 2;
      fds = realloc(fds, capfds * sizeof *fds);
      if (!fds) abort();
    }
    size_t n = 0;
    fds[n++] = (struct pollfd){orphaned ? -1 : 0, POLLIN, 0};
    fds[n++] = (struct pollfd){wake_r, POLLIN, 0};
    if (outq.len) fds[n++] = (struct pollfd){1, POLLOUT, 0};
    int64_t now = now_ms(), wait = -1;
    for (job_t *j = jobs; j; j = j->next) {
      int *fd[4] = {&j->in_fd, &j->out_fd, &j->err_fd, &j->sync_fd};
      for (int k = 0; k < 4; k++) {
        j->slot[k] = *fd[k] >= 0 ? (int)n : -1;
        if (*fd[k] >= 0) fds[n++] = (struct pollfd){*fd[k], k == 0 ? POLLOUT : POLLIN, 0};
      }
      // a job killed at its deadline is only waited for now, not woken for again
      if (j->deadline && !j->exited && !j->timedout) {
        int64_t left = j->deadline - now;
        if (left < 0) left = 0;
        if (wait < 0 || left < wait) wait = left;
      }
    }
    size_t first_life = n;
    for (size_t i = 0; i < nlifelines; i++) fds[n++] = (struct pollfd){lifelines[i].fd, POLLIN, 0};
    int ready = poll(fds, n, wait > INT32_MAX ? INT32_MAX : (int)wait);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return 2;
    }
    if (fds[1].revents) drain(wake_r, NULL);
    if (fds[0].revents) {
      char chunk[65536];
      ssize_t got = read(0, chunk, sizeof chunk);
      // The daemon is gone: nobody reads the replies, and the commands finish on their own. A
      // conmon still launching is the exception: it writes its first line into the sync pipe and
      // would die of SIGPIPE with no reader, so its container would run unwatched. The helper
      // keeps those pipes until each has reported (or timed out), then exits (end of the loop).
      if (got == 0) orphaned = 1;
      if (got > 0) buf_add(&inbuf, chunk, (size_t)got);
      while (inbuf.len >= 4) {
        const unsigned char *u = (const unsigned char *)inbuf.data;
        uint32_t size = (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
        if (inbuf.len < 4 + (size_t)size) break;
        request_t r;
        if (parse(inbuf.data + 4, inbuf.data + 4 + size, &r) == 0) start(&r);
        else return 3; // not our protocol: nothing sensible can follow
        free_request(&r);
        buf_drop(&inbuf, 4 + (size_t)size);
      }
    }
    // lifelines (one per running container): conmon holds the sync pipe until it exits, so its
    // end is conmon's death notice; they are polled in the order they are kept
    size_t kept = 0;
    for (size_t k = 0; k < nlifelines; k++) {
      if (fds[first_life + k].revents && !drain(lifelines[k].fd, NULL)) {
        lifeline_closed(lifelines[k].id);
        close(lifelines[k].fd);
      } else lifelines[kept++] = lifelines[k];
    }
    nlifelines = kept;
    for (job_t *j = jobs; j; j = j->next) {
      if (j->slot[0] >= 0 && fds[j->slot[0]].revents) {
        ssize_t w = write(j->in_fd, j->in.data + j->in_off, j->in.len - j->in_off);
        if (w > 0) j->in_off += (size_t)w;
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || j->in_off == j->in.len) close_fd(&j->in_fd);
      }
      if (j->slot[1] >= 0 && fds[j->slot[1]].revents && !drain(j->out_fd, &j->out)) close_fd(&j->out_fd);
      if (j->slot[2] >= 0 && fds[j->slot[2]].revents && !drain(j->err_fd, &j->err)) close_fd(&j->err_fd);
      if (j->slot[3] >= 0 && fds[j->slot[3]].revents) {
        int open = drain(j->sync_fd, &j->sync);
        if (memchr(j->sync.data ? j->sync.data : "", '\n', j->sync.len)) {
          j->syncdone = 1;
          add_lifeline(j->id, j->sync_fd);
          j->sync_fd = -1;
        } else if (!open) {
          j->syncdone = 1;
          close_fd(&j->sync_fd);
        }
      }
    }
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      for (job_t *j = jobs; j; j = j->next)
        if (j->pid == pid) {
          j->exited = 1;
          j->status = status;
        }
    }
    now = now_ms();
    for (job_t **p = &jobs; *p;) {
      job_t *j = *p;
      if (j->deadline && now >= j->deadline && !j->timedout) {
        if (!j->exited) kill(j->pid, SIGKILL);
        j->timedout = 1;
      }
      if (finish(j)) {
        *p = j->next;
        free(j);
      } else p = &j->next;
    }
    if (orphaned) {
      outq.len = 0;
      if (!conmon_launching()) return 0;
    } else if (outq.len) {
      ssize_t w = write(1, outq.data, outq.len);
      if (w > 0) buf_drop(&outq, (size_t)w);
      else if (w < 0 && errno != EAGAIN && errno != EINTR) return 0; // nobody reads the replies
    }
  }
}
