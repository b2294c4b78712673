/* Times 1000-id batches in process (apig_request, no HTTP, no data
 * folder) without a policy and with each policy named on the command
 * line, and prints the cost the hooks add per API.
 *
 * Usage: bench_policy [--rounds N] [LABEL=POLICY_FILE]...
 * Each round publishes the 1000 APIs to RELEASE and takes them offline
 * again, so every round does the same work. N defaults to 100.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apig.h"

#define APIS 1000
#define BASE "/v2/p1/apigw/instances/i1"

static const apig_header token = {"X-Auth-Token", 12, "bench", 5};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sends one request; exits unless the status is expect. Returns the body
 * (free with free()). */
static char *call(apig_t *apig, const char *method, const char *target,
                  const char *body, int expect) {
  apig_response *res = NULL;
  if (apig_request(apig, method, target, &token, 1, body, strlen(body),
                   &res) != 0 ||
      res->status != expect) {
    fprintf(stderr, "bench_policy: %s %s failed: %s\n", method, target,
            res ? res->body : "no response");
    exit(1);
  }
  char *copy = strdup(res->body);
  apig_response_free(res);
  return copy;
}

/* Copies the 32-character value of "id" in a JSON answer into id. */
static void take_id(const char *json, char id[33]) {
  const char *at = strstr(json, "\"id\":\"");
  if (!at) {
    fprintf(stderr, "bench_policy: no id in %s\n", json);
    exit(1);
  }
  memcpy(id, at + 6, 32);
  id[32] = '\0';
}

/* Builds the catalogue and returns the batch body listing every API. */
static char *build_catalogue(apig_t *apig) {
  char body[256], group[33], id[33];
  free(call(apig, "POST", BASE "/envs", "{\"name\":\"TEST\"}", 201));
  char *answer = call(apig, "POST", BASE "/api-groups",
                      "{\"name\":\"bench\"}", 201);
  take_id(answer, group);
  free(answer);
  size_t cap = APIS * 40 + 256, len = 0;
  char *batch = malloc(cap);
  len += (size_t)snprintf(batch, cap, "{\"apis\":[");
  for (int i = 0; i < APIS; i++) {
    snprintf(body, sizeof body,
             "{\"group_id\":\"%s\",\"name\":\"api_%04d\",\"type\":1,"
             "\"req_protocol\":\"HTTPS\",\"req_method\":\"GET\","
             "\"req_uri\":\"/r/%04d\",\"auth_type\":\"NONE\","
             "\"backend_type\":\"MOCK\",\"mock_info\":{}}",
             group, i, i);
    answer = call(apig, "POST", BASE "/apis", body, 201);
    take_id(answer, id);
    free(answer);
    len += (size_t)snprintf(batch + len, cap - len, "%s\"%s\"",
                            i ? "," : "", id);
  }
  snprintf(batch + len, cap - len,
           "],\"env_id\":\"DEFAULT_ENVIRONMENT_RELEASE_ID\","
           "\"remark\":\"CHG-1234 bench\"}");
  return batch;
}

typedef struct config {
  const char *label;
  apig_t *apig;
  char *batch;
  double best_ms; /* fastest round seen */
} config;

static void open_config(config *c, const char *label, const char *policy) {
  const char *instances[] = {"p1:i1"};
  apig_options options;
  apig_options_init(&options);
  options.instances = instances;
  options.instance_count = 1;
  options.policy_file = policy;
  char *errmsg = NULL;
  c->label = label;
  c->apig = apig_open(&options, &errmsg);
  if (!c->apig) {
    fprintf(stderr, "bench_policy: cannot open: %s\n", errmsg);
    exit(1);
  }
  c->batch = build_catalogue(c->apig);
  c->best_ms = 1e9;
}

/* Times one online plus one offline batch; keeps the fastest. */
static void run_round(config *c) {
  double start = now_s();
  free(call(c->apig, "POST", BASE "/apis/publish?action=online", c->batch,
            200));
  free(call(c->apig, "POST", BASE "/apis/publish?action=offline", c->batch,
            200));
  double ms = (now_s() - start) * 1000.0;
  if (ms < c->best_ms)
    c->best_ms = ms;
}

int main(int argc, char **argv) {
  static config configs[16];
  int rounds = 100, first = 1, count = 0;
  if (argc > 2 && strcmp(argv[1], "--rounds") == 0) {
    rounds = atoi(argv[2]);
    first = 3;
  }
  if (rounds < 1 || argc - first > 15) {
    fprintf(stderr, "bench_policy: --rounds must be above 0, and at most "
                    "15 policies\n");
    return 2;
  }
  open_config(&configs[count++], "no policy", NULL);
  for (int i = first; i < argc; i++) {
    char *eq = strchr(argv[i], '=');
    if (!eq) {
      fprintf(stderr, "bench_policy: expected LABEL=FILE, got %s\n",
              argv[i]);
      return 2;
    }
    *eq = '\0';
    open_config(&configs[count++], argv[i], eq + 1);
  }
  /* Rounds alternate between the configurations, and each keeps its
   * fastest round, so load from other processes skews them alike. */
  for (int r = 0; r < rounds; r++)
    for (int i = 0; i < count; i++)
      run_round(&configs[i]);
  printf("1000-id batches, one online plus one offline per round, fastest "
         "of %d rounds\n", rounds);
  double base = configs[0].best_ms;
  for (int i = 0; i < count; i++) {
    printf("%-32s %7.2f ms per round", configs[i].label, configs[i].best_ms);
    /* Two batches of APIS APIs per round. */
    if (i > 0)
      printf(", %+.3f us per API", (configs[i].best_ms - base) * 1000.0 /
                                       (2.0 * APIS));
    printf("\n");
    free(configs[i].batch);
    apig_close(configs[i].apig);
  }
  return 0;
}
