/* Request counters and histograms, rendered in Prometheus text format. */
#ifndef APIG_METRICS_H
#define APIG_METRICS_H

#include <stdint.h>

#include "buf.h"

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
  int64_t start_ns;
} apig_metrics;

void apig_metrics_init(apig_metrics *metrics);
/* Counts one answered request of route (an index into the route table,
 * named name) with status and duration. */
void apig_metrics_request(apig_metrics *metrics, int route, const char *name,
                          int status, int64_t duration_ns);
void apig_metrics_batch(apig_metrics *metrics, unsigned size);

#endif
