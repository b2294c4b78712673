/* Embedding example: imports an OpenAPI file into an in-process gateway,
 * publishes every imported API to RELEASE under a policy, and prints the
 * result of each API.
 *
 *   publish CATALOGUE.json POLICY.lua DATA_DIR
 *
 * Build against an installed libapig:
 *   cc publish.c $(pkg-config --cflags --libs apig libcjson) -o publish
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include <apig.h>

#define BASE "/v2/demo-project/apigw/instances/demo-instance"

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  rewind(f);
  char *text = malloc((size_t)size + 1);
  if (text && fread(text, 1, (size_t)size, f) != (size_t)size) {
    free(text);
    text = NULL;
  }
  fclose(f);
  *len = (size_t)size;
  return text;
}

/* Imports the catalogue into a new group and returns the answer. */
static apig_response *import_catalogue(apig_t *apig, const char *path) {
  size_t len;
  char *text = read_file(path, &len);
  if (!text) {
    fprintf(stderr, "publish: cannot read %s\n", path);
    return NULL;
  }
  apig_header token = {"X-Auth-Token", 12, "example", 7};
  apig_response *response = NULL;
  apig_request(apig, "POST", BASE "/openapi/import?is_create_group=true",
               &token, 1, text, len, &response);
  free(text);
  if (response && response->status != 200) {
    fprintf(stderr, "publish: import failed: %d %s\n", response->status,
            response->body);
    apig_response_free(response);
    return NULL;
  }
  return response;
}

static void print_result(const apig_batch_result *result) {
  for (size_t i = 0; i < result->success_count; i++) {
    const apig_batch_item *item = &result->success[i];
    printf("published %-16s version %s remark \"%s\"\n", item->api_name,
           item->version_id, item->remark);
  }
  for (size_t i = 0; i < result->failure_count; i++) {
    const apig_batch_item *item = &result->failure[i];
    printf("failed    %-16s %s %s\n", item->api_name ? item->api_name : "",
           item->error_code, item->error_msg);
  }
  printf("%zu published, %zu failed\n", result->success_count,
         result->failure_count);
}

/* Publishes every API the import created. Returns 0 or 1. */
static int publish_imported(apig_t *apig, const char *import_answer) {
  cJSON *answer = cJSON_Parse(import_answer);
  const cJSON *created = cJSON_GetObjectItem(answer, "success");
  int count = cJSON_GetArraySize(created);
  const char **ids = calloc((size_t)count + 1, sizeof *ids);
  for (int i = 0; i < count; i++)
    ids[i] = cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetArrayItem(created, i), "id"));
  apig_batch_result *result = NULL;
  int rc = apig_publish(apig, "demo-project", "demo-instance",
                        APIG_BATCH_ONLINE, ids, (size_t)count,
                        "DEFAULT_ENVIRONMENT_RELEASE_ID", "first release",
                        &result);
  int status = 1;
  if (rc != 0) {
    fprintf(stderr, "publish: out of memory\n");
  } else if (result->status != 200) {
    fprintf(stderr, "publish: %s %s\n", result->error_code,
            result->error_msg);
  } else {
    print_result(result);
    status = 0;
  }
  apig_batch_result_free(result);
  free(ids);
  cJSON_Delete(answer);
  return status;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: publish CATALOGUE.json POLICY.lua DATA_DIR\n");
    return 2;
  }
  const char *instances[] = {"demo-project:demo-instance"};
  apig_options options;
  apig_options_init(&options);
  options.data_dir = argv[3];
  options.instances = instances;
  options.instance_count = 1;
  options.policy_file = argv[2];
  char *errmsg = NULL;
  apig_t *apig = apig_open(&options, &errmsg);
  if (!apig) {
    fprintf(stderr, "publish: %s\n", errmsg ? errmsg : "out of memory");
    apig_string_free(errmsg);
    return 1;
  }
  printf("libapig %s\n", apig_version_string());
  apig_response *imported = import_catalogue(apig, argv[1]);
  int status = imported ? publish_imported(apig, imported->body) : 1;
  apig_response_free(imported);
  apig_close(apig);
  return status;
}
