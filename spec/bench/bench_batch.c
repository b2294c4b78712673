/* Times the batch engine alone, in process through apig_request: no HTTP,
 * no data folder. Prints the time per API of 1000-id batches online and
 * offline, without and with a policy, then the resident memory of a large
 * catalogue.
 *
 * Usage: bench_batch [--policy FILE] [--rounds N] [--memory APIS]
 *   --policy  the policy for the "with hooks" rows (default: none, and
 *             those rows are skipped)
 *   --rounds  online/offline pairs per measurement (default 20)
 *   --memory  APIs to load for the memory figure (default 1000000; 0
 *             skips it)
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "apig.h"

#define BATCH 1000
#define TARGET "/v2/p1/apigw/instances/i1"

static const apig_header auth = {"X-Auth-Token", 12, "bench", 5};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double rss_mib(void) {
  size_t rss = 0;
  uv_resident_set_memory(&rss);
  return (double)rss / (1024.0 * 1024.0);
}

/* Seconds spent inside apig_request by the last call, which excludes the
 * parsing of the answer here. */
static double last_request_s;

/* Sends one request and returns the parsed body; exits on a status other
 * than `expect`, since every later figure would be wrong. */
static cJSON *call(apig_t *apig, const char *method, const char *target,
                   const char *body, int expect) {
  apig_response *res = NULL;
  double start = now_s();
  int rc = apig_request(apig, method, target, &auth, 1, body,
                        body ? strlen(body) : 0, &res);
  last_request_s = now_s() - start;
  if (rc != 0) {
    fprintf(stderr, "bench_batch: %s %s: no answer\n", method, target);
    exit(1);
  }
  if (res->status != expect) {
    fprintf(stderr, "bench_batch: %s %s: status %d, expected %d: %s\n",
            method, target, res->status, expect, res->body);
    exit(1);
  }
  cJSON *json = cJSON_Parse(res->body);
  apig_response_free(res);
  return json;
}

static char *create_group(apig_t *apig, int n) {
  char body[96];
  snprintf(body, sizeof body, "{\"name\":\"bench_group_%d\"}", n);
  cJSON *group = call(apig, "POST", TARGET "/api-groups", body, 201);
  char *id = strdup(cJSON_GetObjectItem(group, "id")->valuestring);
  cJSON_Delete(group);
  return id;
}

/* Creates an API in group and, when ids is not NULL, appends its id. */
static void create_api(apig_t *apig, const char *group, int n,
                       cJSON *ids) {
  char body[512];
  snprintf(body, sizeof body,
           "{\"group_id\":\"%s\",\"name\":\"bench_api_%d\",\"type\":1,"
           "\"req_protocol\":\"HTTPS\",\"req_method\":\"GET\","
           "\"req_uri\":\"/bench/%d\",\"auth_type\":\"NONE\","
           "\"backend_type\":\"MOCK\","
           "\"mock_info\":{\"result_content\":\"ok\"}}",
           group, n, n);
  cJSON *api = call(apig, "POST", TARGET "/apis", body, 201);
  if (ids)
    cJSON_AddItemToArray(ids, cJSON_CreateString(
                                  cJSON_GetObjectItem(api, "id")->valuestring));
  cJSON_Delete(api);
}

static apig_t *open_handle(const char *policy, unsigned quota) {
  const char *instances[] = {"p1:i1"};
  apig_options options;
  apig_options_init(&options);
  options.instances = instances;
  options.instance_count = 1;
  options.policy_file = policy;
  options.group_api_quota = quota;
  char *err = NULL;
  apig_t *apig = apig_open(&options, &err);
  if (!apig) {
    fprintf(stderr, "bench_batch: cannot open: %s\n", err ? err : "?");
    exit(1);
  }
  return apig;
}

/* Reads the hook call counter from GET /metrics, to show the policy ran. */
static unsigned long long hook_calls(apig_t *apig) {
  apig_response *res = NULL;
  unsigned long long calls = 0;
  if (apig_request(apig, "GET", "/metrics", NULL, 0, NULL, 0, &res) != 0)
    return 0;
  const char *line = strstr(res->body, "\napig_policy_hook_calls_total ");
  if (line)
    calls = strtoull(strchr(line + 1, ' ') + 1, NULL, 10);
  apig_response_free(res);
  return calls;
}

/* Runs rounds of online then offline batches of BATCH APIs and prints
 * microseconds per API for each action. */
static void time_batches(const char *label, const char *policy, int rounds) {
  apig_t *apig = open_handle(policy, BATCH);
  char *group = create_group(apig, 0);
  cJSON *ids = cJSON_CreateArray();
  for (int i = 0; i < BATCH; i++)
    create_api(apig, group, i, ids);
  cJSON *body = cJSON_CreateObject();
  cJSON_AddItemToObject(body, "apis", ids);
  cJSON_AddStringToObject(body, "env_id", "DEFAULT_ENVIRONMENT_RELEASE_ID");
  cJSON_AddStringToObject(body, "remark", "bench CHG-1234");
  char *text = cJSON_PrintUnformatted(body);

  double spent[2] = {0, 0};
  for (int r = 0; r < rounds; r++) {
    for (int a = 0; a < 2; a++) {
      const char *target = a == 0 ? TARGET "/apis/publish?action=online"
                                  : TARGET "/apis/publish?action=offline";
      cJSON *answer = call(apig, "POST", target, text, 200);
      spent[a] += last_request_s;
      int ok = cJSON_GetArraySize(cJSON_GetObjectItem(answer, "success"));
      if (ok != BATCH) {
        fprintf(stderr, "bench_batch: %d of %d succeeded\n", ok, BATCH);
        exit(1);
      }
      cJSON_Delete(answer);
    }
  }

  double per = 1e6 / ((double)rounds * BATCH);
  printf("| %-22s | %8.2f | %8.2f | %10llu |\n", label, spent[0] * per,
         spent[1] * per, hook_calls(apig));
  free(text);
  free(group);
  cJSON_Delete(body);
  apig_close(apig);
}

/* Publishes every API of the groups once more. */
static void publish_groups(apig_t *apig, char **group_ids, long groups) {
  for (long g = 0; g < groups; g++) {
    char body[160];
    snprintf(body, sizeof body,
             "{\"group_id\":\"%s\",\"env_id\":"
             "\"DEFAULT_ENVIRONMENT_RELEASE_ID\"}",
             group_ids[g]);
    cJSON_Delete(
        call(apig, "POST", TARGET "/apis/publish?action=online", body, 200));
  }
}

/* Loads apis APIs in groups of 1000, publishes each twice, and prints the
 * resident memory at each step. The first publish also creates the API's
 * publication slot for the environment; the second adds a version only. */
static void measure_memory(long apis) {
  apig_t *apig = open_handle(NULL, BATCH);
  double opened = rss_mib();

  long groups = (apis + BATCH - 1) / BATCH;
  char **group_ids = calloc((size_t)groups, sizeof *group_ids);
  for (long g = 0; g < groups; g++) {
    group_ids[g] = create_group(apig, (int)g);
    for (long i = g * BATCH; i < apis && i < (g + 1) * BATCH; i++)
      create_api(apig, group_ids[g], (int)i, NULL);
  }
  double loaded = rss_mib();

  publish_groups(apig, group_ids, groups);
  double first = rss_mib();
  publish_groups(apig, group_ids, groups);
  double second = rss_mib();
  printf("\nMemory (resident set, MiB): open handle %.1f, %ld APIs %.1f, "
         "published once %.1f, twice %.1f\n",
         opened, apis, loaded, first, second);
  printf("Per API: %.0f bytes; first version with its publication slot: "
         "%.0f bytes; each later version: %.0f bytes\n",
         (loaded - opened) * 1048576.0 / (double)apis,
         (first - loaded) * 1048576.0 / (double)apis,
         (second - first) * 1048576.0 / (double)apis);
  for (long g = 0; g < groups; g++)
    free(group_ids[g]);
  free(group_ids);
  apig_close(apig);
}

int main(int argc, char **argv) {
  const char *policy = NULL;
  int rounds = 20;
  long memory = 1000000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--policy") == 0)
      policy = argv[i + 1];
    else if (strcmp(argv[i], "--rounds") == 0)
      rounds = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--memory") == 0)
      memory = atol(argv[i + 1]);
  }
  printf("Batch engine in process, %d APIs per batch, %d rounds, "
         "microseconds per API\n\n", BATCH, rounds);
  printf("| %-22s | %8s | %8s | %10s |\n", "case", "online", "offline",
         "hook calls");
  printf("|%s|%s|%s|%s|\n", "------------------------", "----------",
         "----------", "------------");
  time_batches("no policy", NULL, rounds);
  if (policy)
    time_batches("policy, three hooks", policy, rounds);
  if (memory > 0)
    measure_memory(memory);
  return 0;
}
