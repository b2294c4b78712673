/* Replays the fuzz seed corpus and every saved crash input through the
 * fuzz entry points, so the normal and sanitizer builds check them too.
 * An input that breaks an invariant aborts this test. */
#include <dirent.h>
#include <libgen.h>
#include <stdlib.h>

#include "../fuzz/entries.c"
#include "testlib.h"

typedef struct fuzz_target {
  const char *name;
  int (*run)(const uint8_t *data, size_t size);
} fuzz_target;

static const fuzz_target targets[] = {
    {"http", fuzz_http_one},         {"batch", fuzz_batch_one},
    {"auth", fuzz_auth_one},         {"openapi", fuzz_openapi_one},
    {"snapshot", fuzz_snapshot_one}, {"journal", fuzz_journal_one},
};

static uint8_t *read_input(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *data = malloc(len > 0 ? (size_t)len : 1);
  *size = fread(data, 1, (size_t)(len > 0 ? len : 0), f);
  fclose(f);
  return data;
}

/* Runs every file of dir through target; returns how many ran. */
static int replay_dir(const fuzz_target *target, const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  int count = 0;
  struct dirent *entry;
  char path[1024];
  while ((entry = readdir(d))) {
    if (entry->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
    size_t size = 0;
    uint8_t *data = read_input(path, &size);
    CHECK(data != NULL);
    if (!data)
      continue;
    fprintf(stderr, "%s: %s\n", target->name, path);
    target->run(data, size);
    free(data);
    count++;
  }
  closedir(d);
  return count;
}

int main(void) {
  char source[1024];
  snprintf(source, sizeof source, "%s", __FILE__);
  char *spec_dir = dirname(dirname(source));
  char dir[1200];

  for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
    snprintf(dir, sizeof dir, "%s/fuzz/corpus/%s", spec_dir,
             targets[i].name);
    int seeds = replay_dir(&targets[i], dir);
    CHECK(seeds > 0);
    snprintf(dir, sizeof dir, "%s/fuzz/regress/%s", spec_dir,
             targets[i].name);
    int saved = replay_dir(&targets[i], dir);
    printf("%s: %d seed inputs, %d saved crash inputs\n", targets[i].name,
           seeds, saved);
  }
  return test_report("test_fuzz_corpus");
}
