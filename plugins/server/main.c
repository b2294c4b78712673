/* apig-server: serves libapig over HTTP on a libuv loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "apig.h"
#include "apig_impl.h"
#include "http.h"
#include "import.h"

#define MAX_INSTANCES 64

typedef struct server_config {
  const char *listen;
  const char *data_dir;
  const char *instances[MAX_INSTANCES];
  size_t instance_count;
  const char *imports[16];
  size_t import_count;
  const char *policy;
  const char *credentials;
  int allow_remote;
  int json_logs;
  apig_log_level log_level;
  apig_fsync_mode fsync_mode;
  uint64_t snapshot_interval_ms;
  uint64_t journal_max_bytes;
  uint64_t policy_budget;
  size_t policy_memory;
  apig_http_limits limits;
  size_t max_body, max_import_body;
  unsigned group_api_quota, env_quota;
} server_config;

typedef struct server {
  uv_loop_t *loop;
  apig_t *apig;
  apig_server *http;
  uv_signal_t sigterm, sigint, sighup, sigusr1;
  uv_prepare_t log_prepare; /* write the buffered log lines out */
  uv_check_t log_check;
  int stopping;
  const server_config *config;
} server;

static const char *level_names[] = {"debug", "info", "warn", "error"};

/* Log lines buffered while the loop runs, so that the lines of the changes
 * that one journal flush completes go out in one write. They are written
 * just before and after each response (the library calls log_flush), at
 * the end of each loop iteration, on a warning or error, and at 64 KiB. */
#define LOG_PENDING_MAX (64 * 1024)

static struct {
  apig_buf pending;
  int buffering;
  pthread_t loop_thread;
} log_out;

static void log_write(const char *data, size_t len) {
  fwrite(data, 1, len, stderr);
  fflush(stderr);
}

static void log_flush(void *ud) {
  (void)ud;
  if (log_out.pending.len > 0)
    log_write(log_out.pending.data, log_out.pending.len);
  apig_buf_reset(&log_out.pending);
}

/* Writes line now, or buffers it on the loop thread while the loop runs. */
static void log_emit(const apig_buf *line, apig_log_level level) {
  if (!line->data)
    return;
  if (!log_out.buffering ||
      !pthread_equal(pthread_self(), log_out.loop_thread) ||
      apig_buf_reserve(&log_out.pending, line->len) != 0) {
    log_flush(NULL);
    log_write(line->data, line->len);
    return;
  }
  apig_buf_append(&log_out.pending, line->data, line->len);
  if (level >= APIG_LOG_WARN || log_out.pending.len >= LOG_PENDING_MAX)
    log_flush(NULL);
}

/* Appends a message as valid UTF-8 whatever a client or a policy put into
 * it: bytes of invalid UTF-8 become '?'. With escape set (text logs),
 * control characters and backslashes become escapes too, so one event
 * stays one line. */
static void append_clean(apig_buf *out, const char *message, int escape) {
  const unsigned char *p = (const unsigned char *)message;
  while (*p) {
    size_t run = 0;
    while (p[run] >= 0x20 && p[run] < 0x7f && p[run] != '\\')
      run++;
    if (!escape)
      while (p[run] && p[run] < 0x80)
        run++;
    apig_buf_append(out, p, run);
    p += run;
    if (!*p)
      break;
    if (*p < 0x80 && !escape) {
      apig_buf_putc(out, (char)*p);
      p++;
    } else if (*p == '\\') {
      apig_buf_puts(out, "\\\\");
      p++;
    } else if (*p == '\n') {
      apig_buf_puts(out, "\\n");
      p++;
    } else if (*p < 0x20 || *p == 0x7f) {
      apig_buf_printf(out, "\\x%02x", *p);
      p++;
    } else {
      /* The valid UTF-8 sequence starting here, if any. */
      size_t left = strnlen((const char *)p, 4), len = 2;
      while (len <= left && apig_utf8_count((const char *)p, len) != 1)
        len++;
      if (len <= left) {
        apig_buf_append(out, p, len);
        p += len;
      } else {
        apig_buf_putc(out, '?');
        p++;
      }
    }
  }
}

/* Writes one log line to stderr: text or JSON. */
static void log_line(void *ud, const apig_log_event *event) {
  const server_config *config = ud;
  char when[40];
  apig_time_nano(event->time_ns, when);
  apig_buf message, line;
  apig_buf_init(&message);
  apig_buf_init(&line);
  apig_buf_reserve(&line, 256 + strlen(event->message));
  if (config->json_logs) {
    append_clean(&message, event->message, 0);
    apig_buf_puts(&line, "{\"time\":\"");
    apig_buf_puts(&line, when);
    apig_buf_puts(&line, "\",\"level\":\"");
    apig_buf_puts(&line, level_names[event->level]);
    apig_buf_putc(&line, '"');
    if (event->request_id[0]) {
      apig_buf_puts(&line, ",\"request_id\":\"");
      apig_buf_puts(&line, event->request_id);
      apig_buf_putc(&line, '"');
    }
    apig_buf_puts(&line, ",\"message\":");
    apig_buf_json_string(&line, message.data ? message.data : "",
                         message.len);
    apig_buf_puts(&line, "}\n");
  } else {
    /* "TIME LEVEL [request_id=ID ]MESSAGE", the level padded to 5. */
    const char *level = level_names[event->level];
    apig_buf_puts(&line, when);
    apig_buf_putc(&line, ' ');
    apig_buf_puts(&line, level);
    for (size_t pad = strlen(level); pad < 6; pad++)
      apig_buf_putc(&line, ' ');
    if (event->request_id[0]) {
      apig_buf_puts(&line, "request_id=");
      apig_buf_puts(&line, event->request_id);
      apig_buf_putc(&line, ' ');
    }
    append_clean(&line, event->message, 1);
    apig_buf_putc(&line, '\n');
  }
  log_emit(&line, event->level);
  apig_buf_free(&message);
  apig_buf_free(&line);
}

static void usage(FILE *out) {
  fprintf(out,
      "Usage: apig-server [OPTION]...\n"
      "Serve the API gateway batch publish contract over HTTP.\n\n"
      "  --listen ADDR:PORT      address to listen on; [::1]:PORT for IPv6,\n"
      "                          port 0 picks a free port (default "
      "127.0.0.1:8080)\n"
      "  --allow-remote          allow a non-loopback --listen address in\n"
      "                          development mode (no --credentials)\n"
      "  --data-dir DIR          journal and snapshot folder (default ./data)\n"
      "  --instance PROJECT_ID:INSTANCE_ID\n"
      "                          create this instance if missing; repeatable\n"
      "                          (default: one instance whose ids are printed)\n"
      "  --import FILE           import an OpenAPI 3.x or Swagger 2.0 file\n"
      "                          (JSON or YAML) into the first instance as a\n"
      "                          group named after info.title; repeatable;\n"
      "                          a file imported before adds nothing\n"
      "  --policy FILE           Lua policy file (default: none)\n"
      "  --policy-budget N       VM instructions per hook call "
      "(default 1000000)\n"
      "  --policy-memory BYTES   memory cap of the policy's Lua state\n"
      "                          (default 67108864, 64 MiB)\n"
      "  --credentials FILE      tokens and AK/SK pairs (JSON); without it\n"
      "                          any non-empty token is accepted "
      "(development mode)\n"
      "  --fsync always|off      flush the journal before answering\n"
      "                          (default always; off loses acknowledged\n"
      "                          changes on a crash: for benchmarks only)\n"
      "  --snapshot-interval S   seconds between snapshots (default 3600)\n"
      "  --journal-max BYTES     journal size that triggers a snapshot\n"
      "                          (default 67108864)\n"
      "  --max-header BYTES      request line plus headers (default 16384)\n"
      "  --max-body BYTES        JSON body (default 1048576)\n"
      "  --max-import-body BYTES OpenAPI import body (default 16777216)\n"
      "  --request-timeout MS    a request must arrive within this many\n"
      "                          milliseconds of its first byte "
      "(default 30000)\n"
      "  --idle-timeout MS       close idle keep-alive connections after\n"
      "                          this many milliseconds (default 60000)\n"
      "  --max-connections N     open connections at once (default 10000)\n"
      "  --group-api-quota N     APIs per group (default 1000)\n"
      "  --env-quota N           environments besides RELEASE (default 10)\n"
      "  --log-level LEVEL       debug, info, warn or error (default info)\n"
      "  --log-format FORMAT     text or json (default text)\n"
      "  --version               print the version and exit\n"
      "  --help                  print this help and exit\n\n"
      "Signals: SIGTERM/SIGINT finish requests in flight, write a snapshot\n"
      "and exit 0; SIGHUP reloads the policy and credentials; SIGUSR1 writes\n"
      "a snapshot now.\n");
}

enum {
  OPT_LISTEN = 256, OPT_ALLOW_REMOTE, OPT_DATA_DIR, OPT_INSTANCE, OPT_IMPORT,
  OPT_POLICY, OPT_POLICY_BUDGET, OPT_POLICY_MEMORY, OPT_CREDENTIALS,
  OPT_FSYNC, OPT_SNAPSHOT_INTERVAL, OPT_JOURNAL_MAX, OPT_MAX_HEADER,
  OPT_MAX_BODY, OPT_MAX_IMPORT_BODY, OPT_REQUEST_TIMEOUT, OPT_IDLE_TIMEOUT,
  OPT_MAX_CONNECTIONS, OPT_GROUP_API_QUOTA, OPT_ENV_QUOTA, OPT_LOG_LEVEL,
  OPT_LOG_FORMAT, OPT_VERSION, OPT_HELP
};

static const struct option long_options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"allow-remote", no_argument, NULL, OPT_ALLOW_REMOTE},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"instance", required_argument, NULL, OPT_INSTANCE},
    {"import", required_argument, NULL, OPT_IMPORT},
    {"policy", required_argument, NULL, OPT_POLICY},
    {"policy-budget", required_argument, NULL, OPT_POLICY_BUDGET},
    {"policy-memory", required_argument, NULL, OPT_POLICY_MEMORY},
    {"credentials", required_argument, NULL, OPT_CREDENTIALS},
    {"fsync", required_argument, NULL, OPT_FSYNC},
    {"snapshot-interval", required_argument, NULL, OPT_SNAPSHOT_INTERVAL},
    {"journal-max", required_argument, NULL, OPT_JOURNAL_MAX},
    {"max-header", required_argument, NULL, OPT_MAX_HEADER},
    {"max-body", required_argument, NULL, OPT_MAX_BODY},
    {"max-import-body", required_argument, NULL, OPT_MAX_IMPORT_BODY},
    {"request-timeout", required_argument, NULL, OPT_REQUEST_TIMEOUT},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"group-api-quota", required_argument, NULL, OPT_GROUP_API_QUOTA},
    {"env-quota", required_argument, NULL, OPT_ENV_QUOTA},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0}};

/* Parses a positive whole number option; exits with a message otherwise. */
static uint64_t number_option(const char *name, const char *text) {
  char *end;
  errno = 0;
  unsigned long long value = strtoull(text, &end, 10);
  if (errno || end == text || *end || text[0] == '-' || value == 0) {
    fprintf(stderr,
            "apig-server: invalid value \"%s\" for --%s: expected a whole "
            "number above 0\n",
            text, name);
    exit(2);
  }
  return value;
}

static void parse_options(int argc, char **argv, server_config *c) {
  memset(c, 0, sizeof *c);
  c->listen = "127.0.0.1:8080";
  c->data_dir = "./data";
  c->log_level = APIG_LOG_INFO;
  apig_http_limits_init(&c->limits);
  int opt;
  while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
    const char *name = opt >= OPT_LISTEN && opt <= OPT_HELP
                           ? long_options[opt - OPT_LISTEN].name
                           : "";
    switch (opt) {
    case OPT_LISTEN: c->listen = optarg; break;
    case OPT_ALLOW_REMOTE: c->allow_remote = 1; break;
    case OPT_DATA_DIR: c->data_dir = optarg; break;
    case OPT_INSTANCE:
      if (c->instance_count == MAX_INSTANCES) {
        fprintf(stderr, "apig-server: at most %d --instance options\n",
                MAX_INSTANCES);
        exit(2);
      }
      c->instances[c->instance_count++] = optarg;
      break;
    case OPT_IMPORT:
      if (c->import_count == 16) {
        fprintf(stderr, "apig-server: at most 16 --import options\n");
        exit(2);
      }
      c->imports[c->import_count++] = optarg;
      break;
    case OPT_POLICY: c->policy = optarg; break;
    case OPT_POLICY_BUDGET:
      c->policy_budget = number_option(name, optarg);
      break;
    case OPT_POLICY_MEMORY:
      c->policy_memory = number_option(name, optarg);
      break;
    case OPT_CREDENTIALS: c->credentials = optarg; break;
    case OPT_FSYNC:
      if (strcmp(optarg, "always") == 0) {
        c->fsync_mode = APIG_FSYNC_ALWAYS;
      } else if (strcmp(optarg, "off") == 0) {
        c->fsync_mode = APIG_FSYNC_OFF;
      } else {
        fprintf(stderr, "apig-server: invalid --fsync \"%s\": expected "
                        "always or off\n", optarg);
        exit(2);
      }
      break;
    case OPT_SNAPSHOT_INTERVAL:
      c->snapshot_interval_ms = number_option(name, optarg) * 1000;
      break;
    case OPT_JOURNAL_MAX:
      c->journal_max_bytes = number_option(name, optarg);
      break;
    case OPT_MAX_HEADER:
      c->limits.max_header_bytes = number_option(name, optarg);
      break;
    case OPT_MAX_BODY: c->max_body = number_option(name, optarg); break;
    case OPT_MAX_IMPORT_BODY:
      c->max_import_body = number_option(name, optarg);
      break;
    case OPT_REQUEST_TIMEOUT:
      c->limits.request_timeout_ms = number_option(name, optarg);
      break;
    case OPT_IDLE_TIMEOUT:
      c->limits.idle_timeout_ms = number_option(name, optarg);
      break;
    case OPT_MAX_CONNECTIONS:
      c->limits.max_connections = (unsigned)number_option(name, optarg);
      break;
    case OPT_GROUP_API_QUOTA:
      c->group_api_quota = (unsigned)number_option(name, optarg);
      break;
    case OPT_ENV_QUOTA:
      c->env_quota = (unsigned)number_option(name, optarg);
      break;
    case OPT_LOG_LEVEL: {
      int found = 0;
      for (int i = 0; i < 4; i++)
        if (strcmp(optarg, level_names[i]) == 0) {
          c->log_level = (apig_log_level)i;
          found = 1;
        }
      if (!found) {
        fprintf(stderr, "apig-server: invalid --log-level \"%s\": expected "
                        "debug, info, warn or error\n", optarg);
        exit(2);
      }
      break;
    }
    case OPT_LOG_FORMAT:
      if (strcmp(optarg, "json") == 0 || strcmp(optarg, "text") == 0) {
        c->json_logs = strcmp(optarg, "json") == 0;
      } else {
        fprintf(stderr, "apig-server: invalid --log-format \"%s\": "
                        "expected text or json\n", optarg);
        exit(2);
      }
      break;
    case OPT_VERSION:
      printf("apig-server %s\n", apig_version_string());
      exit(0);
    case OPT_HELP:
      usage(stdout);
      exit(0);
    default:
      fprintf(stderr, "Try 'apig-server --help' for the options.\n");
      exit(2);
    }
  }
  if (optind < argc) {
    fprintf(stderr, "apig-server: unexpected argument \"%s\"\n"
                    "Try 'apig-server --help' for the options.\n",
            argv[optind]);
    exit(2);
  }
}

static void on_http_stopped(void *arg) {
  server *s = arg;
  s->http = NULL;
  uv_close((uv_handle_t *)&s->log_prepare, NULL);
  uv_close((uv_handle_t *)&s->log_check, NULL);
  uv_close((uv_handle_t *)&s->sigterm, NULL);
  uv_close((uv_handle_t *)&s->sigint, NULL);
  uv_close((uv_handle_t *)&s->sighup, NULL);
  uv_close((uv_handle_t *)&s->sigusr1, NULL);
}

static void on_log_prepare(uv_prepare_t *handle) {
  (void)handle;
  log_flush(NULL);
}

static void on_log_check(uv_check_t *handle) {
  (void)handle;
  log_flush(NULL);
}

/* From here on, log lines of the loop thread are buffered (see log_out). */
static void start_log_buffering(server *s) {
  uv_prepare_init(s->loop, &s->log_prepare);
  uv_prepare_start(&s->log_prepare, on_log_prepare);
  uv_unref((uv_handle_t *)&s->log_prepare);
  uv_check_init(s->loop, &s->log_check);
  uv_check_start(&s->log_check, on_log_check);
  uv_unref((uv_handle_t *)&s->log_check);
  log_out.loop_thread = pthread_self();
  log_out.buffering = 1;
}

static void on_signal(uv_signal_t *handle, int signum) {
  server *s = handle->data;
  const apig_logger *logger = apig_get_logger(s->apig);
  if (signum == SIGHUP) {
    apig_logf(logger, APIG_LOG_INFO, NULL, "SIGHUP: reloading");
    apig_reload_policy(s->apig);
    apig_reload_credentials(s->apig);
    return;
  }
  if (signum == SIGUSR1) {
    apig_logf(logger, APIG_LOG_INFO, NULL,
              "SIGUSR1: starting a background snapshot");
    apig_snapshot_background(s->apig);
    return;
  }
  if (s->stopping)
    return;
  s->stopping = 1;
  apig_logf(logger, APIG_LOG_INFO, NULL,
            "%s: finishing requests in flight, then stopping",
            signum == SIGTERM ? "SIGTERM" : "SIGINT");
  apig_serve_stop(s->http, on_http_stopped, s);
}

static void start_signal(server *s, uv_signal_t *handle, int signum) {
  uv_signal_init(s->loop, handle);
  handle->data = s;
  uv_signal_start(handle, on_signal, signum);
}

static int run_imports(apig_t *apig, const server_config *c,
                       const char *instance) {
  for (size_t i = 0; i < c->import_count; i++) {
    char *summary = NULL, *errmsg = NULL;
    if (apig_import_file(apig, instance, c->imports[i], &summary,
                         &errmsg) != 0) {
      fprintf(stderr, "apig-server: import failed: %s\n", errmsg);
      apig_string_free(errmsg);
      return -1;
    }
    cJSON *answer = cJSON_Parse(summary);
    int created = cJSON_GetArraySize(cJSON_GetObjectItem(answer, "success"));
    int skipped = cJSON_GetArraySize(cJSON_GetObjectItem(answer, "failure"));
    apig_logf(apig_get_logger(apig), APIG_LOG_INFO, NULL,
              "imported %s into group %s: %d APIs created, %d skipped "
              "(existing or over quota)",
              c->imports[i],
              cJSON_GetStringValue(cJSON_GetObjectItem(answer, "group_id")),
              created, skipped);
    cJSON_Delete(answer);
    apig_string_free(summary);
  }
  return 0;
}

/* Without --instance, the instance recorded in the data folder is reused,
 * else one default instance is created. */
static const char *default_instance(apig_t *apig, char *out, size_t size) {
  apig_instance *first = apig->store.instances;
  if (first) {
    snprintf(out, size, "%s", first->key);
    return out;
  }
  snprintf(out, size, "%s", "default-project:default-instance");
  return out;
}

/* A background snapshot fork()s, and fork() copies the page tables of the
 * whole heap while the event loop waits: about 25 ms for 0.9 GB in 4 KiB
 * pages, 1.3 ms in 2 MiB pages (bench_durability on a 2-vCPU KVM guest).
 * Faulting a fresh heap in as huge pages made loading a large snapshot
 * slower there, so the data loads in 4 KiB pages. A thread then marks the
 * malloc heap ([heap], where the loaded data lives) for huge pages
 * (MADV_HUGEPAGE), and goes on marking what the heap grows by. Once the heap has 64 MiB or more, it also collapses each 2 MiB
 * of it that is mostly resident into one (MADV_COLLAPSE, Linux 6.1 and
 * later; older kernels skip it). Sparse parts are left alone, because a
 * collapse would fill them in. */
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#define HUGE_PAGE (2ul << 20)
#define COLLAPSE_MIN (64ul << 20) /* a smaller heap is only marked */
#define COLLAPSE_PERIOD_S 5

/* Returns whether most of the 2 MiB at `at` is resident. */
static int mostly_resident(unsigned long at) {
  unsigned char pages[HUGE_PAGE / 4096];
  if (mincore((void *)at, HUGE_PAGE, pages) != 0)
    return 0;
  size_t resident = 0;
  for (size_t i = 0; i < sizeof pages; i++)
    resident += pages[i] & 1;
  return resident * 4 >= sizeof pages * 3;
}

/* Marks the region for huge pages, and with collapse set also collapses
 * the mostly resident parts that it has already. */
static void collapse_region(unsigned long start, unsigned long end,
                            int collapse) {
  start = (start + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
  end &= ~(HUGE_PAGE - 1);
  if (end <= start || madvise((void *)start, end - start, MADV_HUGEPAGE) ||
      !collapse)
    return;
  for (unsigned long at = start; at < end; at += HUGE_PAGE)
    if (mostly_resident(at) &&
        madvise((void *)at, HUGE_PAGE, MADV_COLLAPSE) != 0 &&
        errno == EINVAL)
      return; /* a kernel without MADV_COLLAPSE */
}

/* Finds the span of the malloc heap: brk() adds a mapping of its own
 * next to the old one when the old one is marked, so there may be
 * several. Returns 0, or -1 when there is none. */
static int heap_span(unsigned long *first, unsigned long *last) {
  FILE *maps = fopen("/proc/self/maps", "r");
  if (!maps)
    return -1;
  *first = *last = 0;
  char line[512];
  while (fgets(line, sizeof line, maps)) {
    unsigned long start, end;
    char path[256] = "";
    if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %255s", &start, &end,
               path) != 3 ||
        strcmp(path, "[heap]") != 0)
      continue;
    if (*last == 0)
      *first = start;
    *last = end;
  }
  fclose(maps);
  return *last > *first ? 0 : -1;
}

/* Runs for the life of the process: right after the load, then every
 * COLLAPSE_PERIOD_S seconds for what the heap has grown since. */
static void *collapse_heap(void *arg) {
  (void)arg;
  unsigned long done = 0; /* end of the span collapsed last time */
  for (;;) {
    unsigned long first, last;
    if (heap_span(&first, &last) == 0 && last != done) {
      int collapse = last - first >= COLLAPSE_MIN;
      int grown = collapse && done > first && done < last;
      collapse_region(grown ? done : first, last, collapse);
      if (collapse)
        done = last;
    }
    sleep(COLLAPSE_PERIOD_S);
  }
  return NULL;
}

static void start_heap_collapse(void) {
  pthread_t thread;
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0)
    return;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_create(&thread, &attr, collapse_heap, NULL);
  pthread_attr_destroy(&attr);
}

int main(int argc, char **argv) {
  server_config config;
  parse_options(argc, argv, &config);
  signal(SIGPIPE, SIG_IGN);
  if (!config.credentials && !config.allow_remote &&
      !apig_listen_is_loopback(config.listen)) {
    fprintf(stderr,
            "apig-server: refusing to listen on %s in development mode, "
            "where any token is accepted; use --credentials FILE, or "
            "--allow-remote to accept this risk\n",
            config.listen);
    return 2;
  }
  apig_options options;
  apig_options_init(&options);
  options.data_dir = config.data_dir;
  options.instances = config.instances;
  options.instance_count = config.instance_count;
  options.policy_file = config.policy;
  options.credentials_file = config.credentials;
  options.policy_budget = config.policy_budget;
  options.policy_memory = config.policy_memory;
  options.max_body = config.max_body;
  options.max_import_body = config.max_import_body;
  options.group_api_quota = config.group_api_quota;
  options.env_quota = config.env_quota;
  options.fsync_mode = config.fsync_mode;
  options.snapshot_interval_ms = config.snapshot_interval_ms;
  options.journal_max_bytes = config.journal_max_bytes;
  options.log = log_line;
  options.log_ud = &config;
  options.log_flush = log_flush;
  options.log_level = config.log_level;
  char *errmsg = NULL;
  apig_t *apig = apig_open(&options, &errmsg);
  if (!apig) {
    fprintf(stderr, "apig-server: cannot start: %s\n",
            errmsg ? errmsg : "out of memory");
    apig_string_free(errmsg);
    return 1;
  }
  start_heap_collapse();
  char fallback[512];
  const char *instance = config.instance_count ? config.instances[0] : NULL;
  if (!instance) {
    instance = default_instance(apig, fallback, sizeof fallback);
    if (apig_add_instance(apig, instance, &errmsg) != 0) {
      fprintf(stderr, "apig-server: cannot start: %s\n",
              errmsg ? errmsg : "out of memory");
      apig_string_free(errmsg);
      apig_close(apig);
      return 1;
    }
  }
  if (run_imports(apig, &config, instance) != 0) {
    apig_close(apig);
    return 1;
  }

  server s = {.loop = uv_default_loop(), .apig = apig, .config = &config};
  /* apig_serve also runs journal flushes and snapshots on the loop and
   * reloads the policy when its file changes. */
  apig_serve_options serve_options = {
      .max_header_bytes = config.limits.max_header_bytes,
      .request_timeout_ms = config.limits.request_timeout_ms,
      .idle_timeout_ms = config.limits.idle_timeout_ms,
      .max_connections = config.limits.max_connections,
      .allow_remote = config.allow_remote};
  char *http_err = NULL;
  if (apig_serve(apig, s.loop, config.listen, &serve_options, &s.http,
                 &http_err) != 0) {
    fprintf(stderr, "apig-server: cannot listen on %s: %s\n", config.listen,
            http_err ? http_err : "unknown error");
    apig_string_free(http_err);
    apig_close(apig);
    return 1;
  }
  start_signal(&s, &s.sigterm, SIGTERM);
  start_signal(&s, &s.sigint, SIGINT);
  start_signal(&s, &s.sighup, SIGHUP);
  start_signal(&s, &s.sigusr1, SIGUSR1);

  const char *colon = strchr(instance, ':');
  char host[256];
  snprintf(host, sizeof host, "%.*s", (int)(strrchr(config.listen, ':') -
                                             config.listen), config.listen);
  apig_logf(apig_get_logger(apig), APIG_LOG_INFO, NULL,
            "apig-server %s listening on http://%s:%d (instance %s, data "
            "in %s)",
            apig_version_string(), host, apig_server_port(s.http), instance,
            config.data_dir);
  if (!config.credentials)
    apig_logf(apig_get_logger(apig), APIG_LOG_INFO, NULL,
              "try: curl -H 'X-Auth-Token: dev' "
              "http://%s:%d/v2/%.*s/apigw/instances/%s/apis",
              host, apig_server_port(s.http), (int)(colon - instance),
              instance, colon + 1);
  start_log_buffering(&s);
  uv_run(s.loop, UV_RUN_DEFAULT);
  log_out.buffering = 0;
  log_flush(NULL);
  apig_buf_free(&log_out.pending);
  apig_close(apig);
  uv_loop_close(s.loop);
  /* The handle and its logger are gone; the line keeps the log format. */
  apig_log_event stopped = {APIG_LOG_INFO, apig_now_ns(), "",
                            "apig-server stopped"};
  if (config.log_level <= APIG_LOG_INFO)
    log_line(&config, &stopped);
  return 0;
}
