/* Request counters and histograms, and their Prometheus text rendering. */
#include "metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "apig_impl.h"
#include "util.h"

void apig_metrics_init(apig_metrics *metrics) {
  memset(metrics, 0, sizeof *metrics);
  metrics->start_ns = apig_now_ns();
}

/* Upper bounds of the latency buckets, in seconds; the last is +Inf. */
const double apig_latency_bounds[APIG_METRICS_BUCKETS - 1] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
    0.01,   0.025,   0.05,   0.1,   1.0};
/* Upper bounds of the batch size buckets, in APIs; the last is +Inf. */
const double apig_batch_bounds[APIG_METRICS_BUCKETS - 1] = {
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000};

static void observe(uint64_t *buckets, const double *bounds, double value) {
  int i = 0;
  while (i < APIG_METRICS_BUCKETS - 1 && value > bounds[i])
    i++;
  buckets[i]++;
}

void apig_metrics_request(apig_metrics *metrics, int route, const char *name,
                          int status, int64_t duration_ns) {
  if (route >= 0 && route < APIG_METRICS_ROUTES) {
    metrics->route_names[route] = name;
    apig_route_counter *row = metrics->counters[route];
    for (int i = 0; i < APIG_METRICS_STATUSES; i++) {
      if (row[i].status == status || row[i].status == 0) {
        row[i].status = status;
        row[i].count++;
        break;
      }
    }
  }
  double seconds = (double)duration_ns / 1e9;
  observe(metrics->latency_buckets, apig_latency_bounds, seconds);
  metrics->latency_count++;
  metrics->latency_sum += seconds;
}

void apig_metrics_batch(apig_metrics *metrics, unsigned size) {
  observe(metrics->batch_buckets, apig_batch_bounds, (double)size);
  metrics->batch_count++;
  metrics->batch_sum += size;
}

void apig_metrics_retire_policy(apig_metrics *metrics,
                                const apig_policy_stats *stats) {
  apig_policy_stats *total = &metrics->retired_policy;
  total->hook_calls += stats->hook_calls;
  total->hook_errors += stats->hook_errors;
  total->budget_overruns += stats->budget_overruns;
  total->memory_overruns += stats->memory_overruns;
}

/* ---- rendering ---- */

static void put_header(apig_buf *out, const char *name, const char *type,
                       const char *help) {
  apig_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                  type);
}

/* Appends a label value with the escapes of the text format: backslash,
 * double quote and line feed. */
static void put_label_value(apig_buf *out, const char *value) {
  apig_buf_putc(out, '"');
  for (const char *c = value; *c; c++) {
    if (*c == '\\' || *c == '"')
      apig_buf_putc(out, '\\');
    if (*c == '\n')
      apig_buf_puts(out, "\\n");
    else
      apig_buf_putc(out, *c);
  }
  apig_buf_putc(out, '"');
}

/* Writes the shortest of %.15g and %.17g that reads back as value. */
static void put_double(apig_buf *out, double value) {
  char text[32];
  snprintf(text, sizeof text, "%.15g", value);
  if (strtod(text, NULL) != value)
    snprintf(text, sizeof text, "%.17g", value);
  apig_buf_puts(out, text);
}

static void put_sample(apig_buf *out, const char *name, double value) {
  apig_buf_printf(out, "%s ", name);
  put_double(out, value);
  apig_buf_putc(out, '\n');
}

static void put_counter(apig_buf *out, const char *name, const char *help,
                        uint64_t value) {
  put_header(out, name, "counter", help);
  apig_buf_printf(out, "%s %llu\n", name, (unsigned long long)value);
}

static void put_gauge(apig_buf *out, const char *name, const char *help,
                      double value) {
  put_header(out, name, "gauge", help);
  put_sample(out, name, value);
}

static void put_histogram(apig_buf *out, const char *name, const char *help,
                          const uint64_t *buckets, const double *bounds,
                          uint64_t count, double sum) {
  put_header(out, name, "histogram", help);
  uint64_t cumulative = 0;
  for (int i = 0; i < APIG_METRICS_BUCKETS; i++) {
    cumulative += buckets[i];
    apig_buf_printf(out, "%s_bucket{le=\"", name);
    if (i < APIG_METRICS_BUCKETS - 1)
      apig_buf_printf(out, "%g", bounds[i]);
    else
      apig_buf_puts(out, "+Inf");
    apig_buf_printf(out, "\"} %llu\n", (unsigned long long)cumulative);
  }
  apig_buf_printf(out, "%s_sum ", name);
  put_double(out, sum);
  apig_buf_printf(out, "\n%s_count %llu\n", name, (unsigned long long)count);
}

static void render_requests(const apig_metrics *m, apig_buf *out) {
  put_header(out, "apig_requests_total", "counter",
             "Requests answered, by route and HTTP status.");
  for (int r = 0; r < APIG_METRICS_ROUTES; r++) {
    for (int i = 0; i < APIG_METRICS_STATUSES; i++) {
      const apig_route_counter *c = &m->counters[r][i];
      if (c->status == 0 || !m->route_names[r])
        continue;
      apig_buf_puts(out, "apig_requests_total{route=");
      put_label_value(out, m->route_names[r]);
      apig_buf_printf(out, ",status=\"%d\"} %llu\n", c->status,
                      (unsigned long long)c->count);
    }
  }
  put_histogram(out, "apig_request_duration_seconds",
                "Time spent routing and handling a request, without the "
                "wait for the journal flush.",
                m->latency_buckets, apig_latency_bounds, m->latency_count,
                m->latency_sum);
  put_histogram(out, "apig_batch_size",
                "APIs per batch publish or take offline request.",
                m->batch_buckets, apig_batch_bounds, m->batch_count,
                (double)m->batch_sum);
}

static void render_policy(const apig_t *apig, apig_buf *out) {
  apig_policy_stats total = apig->metrics.retired_policy;
  if (apig->policy) {
    const apig_policy_stats *now = apig_policy_get_stats(apig->policy);
    total.hook_calls += now->hook_calls;
    total.hook_errors += now->hook_errors;
    total.budget_overruns += now->budget_overruns;
    total.memory_overruns += now->memory_overruns;
  }
  put_gauge(out, "apig_policy_loaded", "1 when a policy is in force, else 0.",
            apig->policy ? 1 : 0);
  put_counter(out, "apig_policy_hook_calls_total",
              "Policy hook calls.", total.hook_calls);
  put_counter(out, "apig_policy_hook_errors_total",
              "Policy hook calls that failed: raised an error, ran out of "
              "a limit or returned a wrong type.",
              total.hook_errors);
  put_counter(out, "apig_policy_budget_overruns_total",
              "Policy hook calls stopped by the instruction budget.",
              total.budget_overruns);
  put_counter(out, "apig_policy_memory_overruns_total",
              "Policy hook calls stopped by the memory cap.",
              total.memory_overruns);
}

/* Journal figures and snapshot age; without a data folder only the age
 * since start, as no snapshot is ever written. */
static void render_persist(const apig_t *apig, int64_t now_ns,
                           apig_buf *out) {
  apig_persist_stats stats = {0};
  if (apig->persist)
    apig_persist_get_stats(apig->persist, &stats);
  put_header(out, "apig_journal_flush_seconds", "summary",
             "Time spent flushing the journal to disk (fdatasync).");
  apig_buf_puts(out, "apig_journal_flush_seconds_sum ");
  put_double(out, (double)stats.flush_ns_total / 1e9);
  apig_buf_printf(out, "\napig_journal_flush_seconds_count %llu\n",
                  (unsigned long long)stats.flushes);
  put_gauge(out, "apig_journal_bytes",
            "Size of the journal since the last snapshot, in bytes.",
            (double)stats.journal_bytes);
  int64_t since = stats.last_snapshot_ns ? stats.last_snapshot_ns
                                         : apig->metrics.start_ns;
  put_gauge(out, "apig_snapshot_age_seconds",
            "Seconds since the last snapshot was written, or since start "
            "when none was written yet.",
            (double)(now_ns - since) / 1e9);
}

static void put_store_size(apig_buf *out, const char *kind, size_t value) {
  apig_buf_puts(out, "apig_store_objects{kind=");
  put_label_value(out, kind);
  apig_buf_printf(out, "} %zu\n", value);
}

static void render_store(const apig_t *apig, apig_buf *out) {
  apig_store_counts counts;
  apig_store_count(&apig->store, &counts);
  put_header(out, "apig_store_objects", "gauge",
             "Objects held in memory, by kind.");
  put_store_size(out, "instances", counts.instances);
  put_store_size(out, "envs", counts.envs);
  put_store_size(out, "groups", counts.groups);
  put_store_size(out, "apis", counts.apis);
  put_store_size(out, "versions", counts.versions);
  put_store_size(out, "publications", counts.publications);
}

/* Counts the entries of /proc/self/fd; -1 where that folder is missing. */
static long count_open_fds(void) {
  DIR *dir = opendir("/proc/self/fd");
  if (!dir)
    return -1;
  long n = 0;
  for (struct dirent *e; (e = readdir(dir)) != NULL;)
    n += e->d_name[0] != '.';
  closedir(dir);
  return n - 1; /* the descriptor of dir itself */
}

static void render_process(const apig_t *apig, int64_t now_ns,
                           apig_buf *out) {
  size_t rss = 0;
  if (uv_resident_set_memory(&rss) == 0)
    put_gauge(out, "process_resident_memory_bytes",
              "Resident set size of the process, in bytes.", (double)rss);
  long fds = count_open_fds();
  if (fds >= 0)
    put_gauge(out, "process_open_fds", "Open file descriptors.",
              (double)fds);
  put_gauge(out, "apig_uptime_seconds", "Seconds since the handle opened.",
            (double)(now_ns - apig->metrics.start_ns) / 1e9);
  put_header(out, "apig_build_info", "gauge",
             "Version of the library, as a label; the value is always 1.");
  apig_buf_puts(out, "apig_build_info{version=");
  put_label_value(out, apig_version_string());
  apig_buf_puts(out, "} 1\n");
}

void apig_render_metrics(apig_t *apig, apig_buf *out) {
  int64_t now_ns = apig_now_ns();
  render_requests(&apig->metrics, out);
  render_policy(apig, out);
  render_persist(apig, now_ns, out);
  render_store(apig, out);
  render_process(apig, now_ns, out);
}
