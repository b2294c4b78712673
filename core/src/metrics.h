/* Request counters and histograms, rendered in Prometheus text format. */
#ifndef APIG_METRICS_H
#define APIG_METRICS_H

#include <stdint.h>

#include "buf.h"
#include "policy.h"

#define APIG_METRICS_ROUTES 32
#define APIG_METRICS_STATUSES 16
#define APIG_METRICS_BUCKETS 12

typedef struct apig_route_counter {
  int status;
  uint64_t count;
} apig_route_counter;

typedef struct apig_metrics {
  const char *route_names[APIG_METRICS_ROUTES];
  apig_route_counter counters[APIG_METRICS_ROUTES][APIG_METRICS_STATUSES];
  uint64_t latency_buckets[APIG_METRICS_BUCKETS]; /* cumulative at render */
  uint64_t latency_count;
  double latency_sum; /* seconds */
  uint64_t batch_buckets[APIG_METRICS_BUCKETS];
  uint64_t batch_count, batch_sum;
  /* Hook figures of policies replaced by a reload, so the counters keep
   * increasing when a fresh Lua state starts again from zero. */
  apig_policy_stats retired_policy;
  int64_t start_ns;
} apig_metrics;

struct apig;

void apig_metrics_init(apig_metrics *metrics);
/* Counts one answered request of route (an index into the route table,
 * named name) with status and duration. */
void apig_metrics_request(apig_metrics *metrics, int route, const char *name,
                          int status, int64_t duration_ns);
void apig_metrics_batch(apig_metrics *metrics, unsigned size);
/* Adds the figures of a policy about to be freed to the running totals. */
void apig_metrics_retire_policy(apig_metrics *metrics,
                                const apig_policy_stats *stats);

/* Appends every metric of the handle to out in Prometheus text format
 * 0.0.4: requests, latency, batch sizes, policy hooks, journal, snapshot
 * age, store sizes and the process's memory and descriptors. */
void apig_render_metrics(struct apig *apig, apig_buf *out);

#endif
