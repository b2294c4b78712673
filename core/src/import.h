/* OpenAPI import: each operation of a Swagger 2.0 or OpenAPI 3.x document
 * becomes one API with a MOCK backend. */
#ifndef APIG_IMPORT_H
#define APIG_IMPORT_H

#include <cjson/cJSON.h>

#include "handler.h"

/* Imports doc into call->inst: into `group`, or, when group is NULL, into
 * a new group named after info.title. Names and routes that exist already
 * and operations past the group's quota are reported per operation and
 * skipped; the first one wins. Answers 200 with group_id, success and
 * failure, or an error; all created APIs are one change. */
void apig_import_document(apig_call *call, const cJSON *doc,
                          apig_group *group);

/* Returns info.title of doc made into a valid group name, in out. */
void apig_import_group_name(const cJSON *doc, char *out, size_t size);

/* Parses an OpenAPI document given as JSON (text starting with '{') or
 * YAML. Returns the tree or NULL with the reason in err. */
cJSON *apig_openapi_parse(const char *text, size_t len, char *err,
                          size_t err_size);

/* Imports the OpenAPI file at path into instance ("PROJECT_ID:INSTANCE_ID")
 * at start-up, into the group named after its title (created when missing,
 * so a second run imports nothing twice). Returns 0 with the answer body in
 * *summary, or -1 with *errmsg; free both with apig_free. */
int apig_import_file(apig_t *apig, const char *instance, const char *path,
                     char **summary, char **errmsg);

#endif
