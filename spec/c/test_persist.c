/* Journal and snapshot files through the in-process handle: round trips,
 * damaged and torn files, and each write and each fsync failing in turn
 * (through the APIG_FAULT_INJECT test hook). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apig.h"
#include "apig_impl.h"
#include "testlib.h"

#define BASE "/v2/p1/apigw/instances/i1"
#define RELEASE "DEFAULT_ENVIRONMENT_RELEASE_ID"

static const apig_header auth = {"X-Auth-Token", 12, "test", 4};

static char log_text[65536];

static void capture_log(void *ud, const apig_log_event *event) {
  (void)ud;
  size_t len = strlen(log_text);
  snprintf(log_text + len, sizeof log_text - len, "%s\n", event->message);
}

static apig_t *open_dir(const char *dir, char **errmsg) {
  static const char *instances[] = {"p1:i1"};
  apig_options options;
  apig_options_init(&options);
  options.data_dir = dir;
  options.instances = instances;
  options.instance_count = 1;
  options.log = capture_log;
  options.log_level = APIG_LOG_WARN;
  return apig_open(&options, errmsg);
}

/* Closes without the final snapshot, so the journal keeps its records. */
static void crash_close(apig_t *apig) {
  apig_persist_close(apig->persist, NULL);
  apig->persist = NULL;
  apig_close(apig);
}

static int request(apig_t *apig, const char *method, const char *target,
                   const char *body, char **out) {
  apig_response *res = NULL;
  if (apig_request(apig, method, target, &auth, 1, body,
                   body ? strlen(body) : 0, &res) != 0)
    return -1;
  int status = res->status;
  if (out)
    *out = strdup(res->body);
  apig_response_free(res);
  return status;
}

/* The state as the API shows it: the API list and each API's versions. */
static char *dump(apig_t *apig) {
  char *list = NULL;
  request(apig, "GET", BASE "/apis?limit=500", NULL, &list);
  cJSON *json = cJSON_Parse(list);
  size_t size = strlen(list) + 1;
  char *out = malloc(size);
  memcpy(out, list, size);
  free(list);
  const cJSON *api;
  cJSON_ArrayForEach(api, cJSON_GetObjectItem(json, "apis")) {
    char target[256], *versions = NULL;
    snprintf(target, sizeof target, BASE "/apis/publish/%s?env_id=" RELEASE,
             cJSON_GetObjectItem(api, "id")->valuestring);
    request(apig, "GET", target, NULL, &versions);
    size += strlen(versions);
    out = realloc(out, size);
    strcat(out, versions);
    free(versions);
  }
  cJSON_Delete(json);
  return out;
}

static char *created_id(const char *body) {
  cJSON *json = cJSON_Parse(body);
  const cJSON *id = cJSON_GetObjectItem(json, "id");
  char *copy = cJSON_IsString(id) ? strdup(id->valuestring) : NULL;
  cJSON_Delete(json);
  return copy;
}

typedef struct script {
  char *group, *apis[3];
  int failures; /* steps answered 500 APIG.9999 */
  int bad;      /* steps answered anything else unexpected */
} script;

/* Runs one step; a 500 must carry APIG.9999 and leave the state as it
 * was. Returns the body (caller frees) or NULL. */
static char *step(apig_t *apig, script *s, const char *method,
                  const char *target, const char *body, int expect) {
  char *before = dump(apig), *out = NULL;
  int status = request(apig, method, target, body, &out);
  if (status == 500) {
    s->failures++;
    CHECK(out && strstr(out, "\"APIG.9999\""));
    char *after = dump(apig);
    CHECK_STR(after, before);
    free(after);
    free(out);
    out = NULL;
  } else if (status != expect) {
    s->bad++;
    fprintf(stderr, "%s %s: status %d, expected %d: %s\n", method, target,
            status, expect, out ? out : "");
    free(out);
    out = NULL;
  }
  free(before);
  return out;
}

static void batch(apig_t *apig, script *s, const char *action,
                  const char *ids, const char *remark) {
  char body[512];
  snprintf(body, sizeof body,
           "{\"apis\":[%s],\"env_id\":\"" RELEASE "\",\"remark\":\"%s\"}",
           ids, remark);
  free(step(apig, s, "POST",
            strcmp(action, "online") == 0
                ? BASE "/apis/publish?action=online"
                : BASE "/apis/publish?action=offline",
            body, 200));
}

static void create_apis(apig_t *apig, script *s) {
  char *body = step(apig, s, "POST", BASE "/api-groups",
                    "{\"name\":\"durable\"}", 201);
  s->group = body ? created_id(body) : NULL;
  free(body);
  for (int i = 0; i < 3 && s->group; i++) {
    char api[512];
    snprintf(api, sizeof api,
             "{\"group_id\":\"%s\",\"name\":\"api%d\",\"type\":1,"
             "\"req_protocol\":\"HTTPS\",\"req_method\":\"GET\","
             "\"req_uri\":\"/api%d\",\"auth_type\":\"NONE\","
             "\"backend_type\":\"MOCK\",\"mock_info\":"
             "{\"result_content\":\"ok\"}}",
             s->group, i, i);
    body = step(apig, s, "POST", BASE "/apis", api, 201);
    s->apis[i] = body ? created_id(body) : NULL;
    free(body);
  }
}

/* Creates a group and three APIs, then publishes and takes offline. */
static void run_script(apig_t *apig, script *s) {
  memset(s, 0, sizeof *s);
  create_apis(apig, s);
  if (!s->apis[0] || !s->apis[1] || !s->apis[2])
    return;
  char all[160], one[48], two[48];
  snprintf(all, sizeof all, "\"%s\",\"%s\",\"%s\"", s->apis[0], s->apis[1],
           s->apis[2]);
  snprintf(one, sizeof one, "\"%s\"", s->apis[0]);
  snprintf(two, sizeof two, "\"%s\"", s->apis[1]);
  batch(apig, s, "online", all, "first");
  batch(apig, s, "offline", two, "");
  batch(apig, s, "online", one, "second");
  apig_snapshot(apig);
  batch(apig, s, "online", all, "third");
  batch(apig, s, "offline", one, "");
}

static void script_free(script *s) {
  free(s->group);
  for (int i = 0; i < 3; i++)
    free(s->apis[i]);
}

/* Removes the temporary folder around a data folder and frees path. */
static void remove_dir(char *path) {
  char command[600];
  snprintf(command, sizeof command, "rm -rf '%.*s'",
           (int)(strrchr(path, '/') - path), path);
  if (system(command) != 0)
    fprintf(stderr, "cleaning up %s failed\n", path);
  free(path);
}

static char *make_dir(void) {
  char tmpl[] = "/tmp/apig-persist-XXXXXX";
  char *dir = mkdtemp(tmpl);
  char *path = malloc(strlen(dir) + 6);
  sprintf(path, "%s/data", dir);
  return path;
}

/* Returns the path of the one file in dir whose name starts with prefix
 * (the newest by name), or NULL. */
static char *find_file(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char best[256] = "";
  while (d && (e = readdir(d)))
    if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 &&
        !strstr(e->d_name, ".tmp-") && strcmp(e->d_name, best) > 0)
      snprintf(best, sizeof best, "%s", e->d_name);
  if (d)
    closedir(d);
  if (!best[0])
    return NULL;
  char *path = malloc(strlen(dir) + strlen(best) + 2);
  sprintf(path, "%s/%s", dir, best);
  return path;
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* A listing of the folder with each file's size and byte sum, to prove
 * that a failed start changed nothing. */
static char *folder_print(const char *dir) {
  static char text[4096];
  text[0] = '\0';
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "rb");
    unsigned long sum = 0;
    int c;
    while (f && (c = fgetc(f)) != EOF)
      sum = sum * 31 + (unsigned long)c;
    if (f)
      fclose(f);
    size_t len = strlen(text);
    snprintf(text + len, sizeof text - len, "%s:%ld:%lu\n", e->d_name,
             file_size(path), sum);
  }
  if (d)
    closedir(d);
  return strdup(text);
}

static void flip_byte(const char *path, long offset) {
  FILE *f = fopen(path, "r+b");
  fseek(f, offset, SEEK_SET);
  int c = fgetc(f);
  fseek(f, offset, SEEK_SET);
  fputc(c ^ 0x5a, f);
  fclose(f);
}

static void test_round_trip(void) {
  char *dir = make_dir(), *errmsg = NULL;
  apig_t *apig = open_dir(dir, &errmsg);
  CHECK(apig != NULL);
  script s;
  run_script(apig, &s);
  CHECK_INT(s.failures, 0);
  CHECK_INT(s.bad, 0);
  char *before = dump(apig);
  apig_close(apig);
  apig = open_dir(dir, &errmsg);
  char *after = dump(apig);
  CHECK_STR(after, before);
  free(after);
  crash_close(apig);
  /* Without the final snapshot the journal replays to the same state. */
  apig = open_dir(dir, &errmsg);
  after = dump(apig);
  CHECK_STR(after, before);
  free(after);
  free(before);
  apig_close(apig);
  script_free(&s);
  remove_dir(dir);
}

/* Leaves dir with a snapshot and journal records after it. */
static char *prepare_damage(char **state, int skip_last) {
  char *dir = make_dir(), *errmsg = NULL;
  apig_t *apig = open_dir(dir, &errmsg);
  script s;
  run_script(apig, &s);
  if (skip_last)
    *state = dump(apig);
  char body[256];
  snprintf(body, sizeof body,
           "{\"apis\":[\"%s\"],\"env_id\":\"" RELEASE "\",\"remark\":\"x\"}",
           s.apis[2]);
  request(apig, "POST", BASE "/apis/publish?action=online", body, NULL);
  if (!skip_last)
    *state = dump(apig);
  crash_close(apig);
  script_free(&s);
  return dir;
}

static void expect_refused(const char *dir, const char *file,
                           const char *problem) {
  char *files = folder_print(dir), *errmsg = NULL;
  apig_t *apig = open_dir(dir, &errmsg);
  CHECK(apig == NULL);
  CHECK(errmsg && strstr(errmsg, file));
  CHECK(errmsg && strstr(errmsg, problem));
  CHECK(errmsg && strstr(errmsg, "at offset "));
  if (errmsg)
    printf("refused as expected: %s\n", errmsg);
  char *again = folder_print(dir);
  CHECK_STR(again, files);
  free(again);
  free(files);
  apig_string_free(errmsg);
  apig_close(apig);
}

static void test_damaged_journal(void) {
  char *state = NULL;
  char *dir = prepare_damage(&state, 0);
  char *journal = find_file(dir, "journal-");
  CHECK(journal && file_size(journal) > 100);
  flip_byte(journal, 30); /* inside the first of several records */
  expect_refused(dir, strrchr(journal, '/') + 1, "damaged record");
  free(journal);
  free(state);
  remove_dir(dir);
}

static void test_torn_journal(void) {
  char *state = NULL;
  char *dir = prepare_damage(&state, 1);
  char *journal = find_file(dir, "journal-");
  long size = file_size(journal);
  CHECK(truncate(journal, size - 7) == 0);
  log_text[0] = '\0';
  char *errmsg = NULL;
  apig_t *apig = open_dir(dir, &errmsg);
  CHECK(apig != NULL);
  CHECK(strstr(log_text, "dropping a torn last record") != NULL);
  if (apig) {
    char *after = dump(apig);
    CHECK_STR(after, state);
    free(after);
    apig_close(apig);
  }
  free(journal);
  free(state);
  remove_dir(dir);
}

static void test_damaged_snapshot(void) {
  char *state = NULL;
  char *dir = prepare_damage(&state, 0);
  char *snapshot = find_file(dir, "snapshot-");
  CHECK(snapshot != NULL);
  const char *name = strrchr(snapshot, '/') + 1;
  char *copy = malloc(strlen(snapshot) + 6);
  sprintf(copy, "%s.orig", snapshot);
  char command[1024];
  snprintf(command, sizeof command, "cp '%s' '%s'", snapshot, copy);
  CHECK(system(command) == 0);

  flip_byte(snapshot, file_size(snapshot) / 2);
  expect_refused(dir, name, "at offset");
  snprintf(command, sizeof command, "cp '%s' '%s'", copy, snapshot);
  CHECK(system(command) == 0);
  CHECK(truncate(snapshot, file_size(snapshot) - 10) == 0);
  expect_refused(dir, name, "snapshot is truncated");
  flip_byte(snapshot, 2);
  expect_refused(dir, name, "bad magic");

  snprintf(command, sizeof command, "mv '%s' '%s'", copy, snapshot);
  CHECK(system(command) == 0);
  char *errmsg = NULL;
  apig_t *apig = open_dir(dir, &errmsg);
  CHECK(apig != NULL);
  char *after = apig ? dump(apig) : NULL;
  CHECK(after && strcmp(after, state) == 0);
  free(after);
  apig_close(apig);
  free(copy);
  free(snapshot);
  free(state);
  remove_dir(dir);
}

/* One run with the Nth write (or fsync) failing. Returns 1 when the fault
 * fired. */
static int fault_run(const char *kind, int n) {
  char spec[32];
  snprintf(spec, sizeof spec, "%s:%d", kind, n);
  setenv("APIG_FAULT_INJECT", spec, 1);
  char *dir = make_dir(), *errmsg = NULL;
  apig_t *apig = open_dir(dir, &errmsg);
  int fired = 0;
  if (!apig) {
    /* The fault hit the start itself (creating the instance). */
    CHECK(errmsg != NULL);
    apig_string_free(errmsg);
    unsetenv("APIG_FAULT_INJECT");
    remove_dir(dir);
    return 1;
  }
  script s;
  run_script(apig, &s);
  CHECK_INT(s.bad, 0);
  fired = s.failures > 0;
  /* The state is usable: one more publish works, at the latest on the
   * second try (the fault may hit the first). */
  char body[256], *out = NULL;
  snprintf(body, sizeof body,
           "{\"apis\":[\"%s\"],\"env_id\":\"" RELEASE "\",\"remark\":\"z\"}",
           s.apis[0] ? s.apis[0] : "none");
  if (s.apis[0]) {
    int status = request(apig, "POST", BASE "/apis/publish?action=online",
                         body, &out);
    if (status == 500) {
      free(out);
      fired = 1;
      status = request(apig, "POST", BASE "/apis/publish?action=online",
                       body, &out);
    }
    CHECK_INT(status, 200);
    if (status != 200)
      fprintf(stderr, "with %s the next publish failed; log:\n%s", spec,
              log_text);
    free(out);
  }
  char *state = dump(apig);
  size_t logged = strlen(log_text);
  crash_close(apig);
  unsetenv("APIG_FAULT_INJECT");
  apig = open_dir(dir, &errmsg);
  CHECK(apig != NULL);
  if (apig) {
    char *after = dump(apig);
    CHECK_STR(after, state);
    if (strcmp(after, state) != 0)
      fprintf(stderr, "after %s\n", spec);
    free(after);
    apig_close(apig);
  }
  if (!fired && logged && strstr(log_text, "failed"))
    fired = 1; /* a snapshot write failed, which answers no request */
  free(state);
  script_free(&s);
  remove_dir(dir);
  return fired;
}

static void test_faults(const char *kind) {
  int fired = 0, runs = 0;
  for (int n = 1; n <= 200; n++) {
    log_text[0] = '\0';
    runs++;
    if (fault_run(kind, n))
      fired++;
    else if (n > 1)
      break; /* past the last call of the run */
  }
  printf("%s faults: %d runs, %d with a failure\n", kind, runs, fired);
  CHECK(fired >= 10);
}

int main(void) {
  test_round_trip();
  test_damaged_journal();
  test_torn_journal();
  test_damaged_snapshot();
  test_faults("write");
  test_faults("fsync");
  return test_report("test_persist");
}
