/* Times the data folder alone, in process: builds a catalogue of N APIs,
 * each published once (N versions), writes it as a snapshot, then times a
 * restart (apig_open loading the snapshot) and a second snapshot.
 *
 * Usage: bench_durability DIR [APIS]
 *   DIR   data folder to create (must not exist); it is left behind so
 *         the server can be started on it
 *   APIS  number of APIs and of versions (default 1000000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>
#include <uv.h>

#include "apig.h"
#include "apig_impl.h"

#define GROUP_SIZE 1000

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

static apig_t *open_dir(const char *dir, int with_instance) {
  static const char *instances[] = {"p1:i1"};
  apig_options options;
  apig_options_init(&options);
  options.data_dir = dir;
  options.instances = instances;
  options.instance_count = with_instance ? 1 : 0;
  options.fsync_mode = APIG_FSYNC_ALWAYS;
  char *errmsg = NULL;
  apig_t *apig = apig_open(&options, &errmsg);
  if (!apig) {
    fprintf(stderr, "bench_durability: open %s failed: %s\n", dir,
            errmsg ? errmsg : "out of memory");
    exit(1);
  }
  return apig;
}

static void apply(apig_t *apig, const apig_op *op) {
  if (apig_store_apply(&apig->store, op, 1) != 0) {
    fprintf(stderr, "bench_durability: building the catalogue failed\n");
    exit(1);
  }
}

static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* A 32-hex id that looks random, as real ids are, but is reproducible. */
static void hex_id(char out[APIG_ID_LEN + 1], unsigned kind, unsigned n) {
  uint64_t key = (uint64_t)kind << 32 | n;
  snprintf(out, APIG_ID_LEN + 1, "%016llx%016llx",
           (unsigned long long)mix(key), (unsigned long long)mix(~key));
}

/* Adds group g and its APIs [first, last), each published once. */
static void fill_group(apig_t *apig, unsigned g, unsigned first,
                       unsigned last, int64_t now) {
  char group_id[APIG_ID_LEN + 1], name[32];
  hex_id(group_id, 1, g);
  snprintf(name, sizeof name, "group_%06u", g);
  apig_op group = {.kind = APIG_OP_GROUP_PUT, .project_id = "p1",
                   .instance_id = "i1", .id = group_id, .name = name,
                   .remark = "", .time_ns = now};
  apply(apig, &group);
  for (unsigned i = first; i < last; i++) {
    char api_id[APIG_ID_LEN + 1], version_id[APIG_ID_LEN + 1];
    char publish_id[APIG_ID_LEN + 1], def[320];
    hex_id(api_id, 2, i);
    hex_id(version_id, 3, i);
    hex_id(publish_id, 4, i);
    int len = snprintf(def, sizeof def,
                       "{\"name\":\"api_%07u\",\"type\":1,\"req_protocol\":"
                       "\"HTTPS\",\"req_method\":\"GET\",\"req_uri\":"
                       "\"/bench/api_%07u\",\"auth_type\":\"NONE\","
                       "\"backend_type\":\"MOCK\",\"mock_info\":"
                       "{\"result_content\":\"ok\"}}",
                       i, i);
    apig_op api = {.kind = APIG_OP_API_PUT, .project_id = "p1",
                   .instance_id = "i1", .id = api_id, .group_id = group_id,
                   .def = def, .def_len = (size_t)len, .time_ns = now};
    apply(apig, &api);
    apig_op publish = {.kind = APIG_OP_PUBLISH, .project_id = "p1",
                       .instance_id = "i1", .id = api_id,
                       .env_id = APIG_RELEASE_ENV_ID,
                       .version_id = version_id, .publish_id = publish_id,
                       .remark = "bench", .time_ns = now};
    apply(apig, &publish);
  }
}

static long file_bytes(const char *dir) {
  char command[512];
  snprintf(command, sizeof command, "du -sb '%s'", dir);
  FILE *pipe = popen(command, "r");
  long bytes = 0;
  if (pipe) {
    if (fscanf(pipe, "%ld", &bytes) != 1)
      bytes = 0;
    pclose(pipe);
  }
  return bytes;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bench_durability DIR [APIS]\n");
    return 2;
  }
  const char *dir = argv[1];
  unsigned apis = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 1000000;
  struct stat st;
  if (stat(dir, &st) == 0) {
    fprintf(stderr, "bench_durability: %s exists; give a new folder\n", dir);
    return 2;
  }

  double t0 = now_s();
  apig_t *apig = open_dir(dir, 1);
  int64_t now = apig_now_ns();
  for (unsigned g = 0; g * GROUP_SIZE < apis; g++) {
    unsigned last = (g + 1) * GROUP_SIZE;
    fill_group(apig, g, g * GROUP_SIZE, last < apis ? last : apis, now);
  }
  printf("built %u APIs and %u versions in memory: %.2f s, RSS %.0f MiB\n",
         apis, apis, now_s() - t0, rss_mib());

  /* fork() copies the page tables of the whole heap: this is what a
   * background snapshot costs the event loop. */
  double t_fork = now_s();
  pid_t child = fork();
  if (child == 0)
    _exit(0);
  printf("fork() with this heap: %.2f ms\n", (now_s() - t_fork) * 1e3);
  waitpid(child, NULL, 0);

  double t1 = now_s();
  if (apig_snapshot(apig) != 0) {
    fprintf(stderr, "bench_durability: snapshot failed\n");
    return 1;
  }
  printf("snapshot written in process: %.2f s, folder %.1f MiB\n",
         now_s() - t1, (double)file_bytes(dir) / (1024.0 * 1024.0));
  apig_persist_close(apig->persist, NULL);
  apig->persist = NULL;
  apig_close(apig);

  double t2 = now_s();
  apig = open_dir(dir, 0);
  double restart = now_s() - t2;
  apig_store_counts counts;
  apig_store_count(&apig->store, &counts);
  printf("restart (load snapshot): %.2f s for %zu APIs and %zu versions, "
         "RSS %.0f MiB\n",
         restart, counts.apis, counts.versions, rss_mib());
  if (counts.apis != apis || counts.versions != apis) {
    fprintf(stderr, "bench_durability: loaded %zu APIs, %zu versions; "
                    "expected %u of each\n",
            counts.apis, counts.versions, apis);
    return 1;
  }
  apig_persist_close(apig->persist, NULL);
  apig->persist = NULL;
  apig_close(apig);
  return 0;
}
