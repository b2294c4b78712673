/* Request counters and histograms. */
#include "metrics.h"

#include <string.h>

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
