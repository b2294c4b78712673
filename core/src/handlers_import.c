/* POST …/openapi/import: reads the OpenAPI document from the `file_name`
 * part of a multipart/form-data body (what the official SDKs send) or from
 * the raw body, as JSON or YAML, and hands it to the importer.
 *
 * The target group comes from `group_id`, or `is_create_group=true`
 * requests a new one. Each may be a form field or a query parameter, and
 * the form field wins.
 */
#include <string.h>

#include "alloc.h"
#include "import.h"
#include "multipart.h"

#define MAX_FORM_PARTS 32

typedef struct import_input {
  const char *text; /* the document; borrowed from the body */
  size_t len;
  char *group_id;   /* owned, or NULL */
  int create_group;
} import_input;

static const apig_form_part *form_part(const apig_form_part *parts,
                                       long count, const char *name) {
  for (long i = 0; i < count; i++)
    if (strcmp(parts[i].name, name) == 0)
      return &parts[i];
  return NULL;
}

static int part_equals(const apig_form_part *part, const char *text) {
  return part->len == strlen(text) && memcmp(part->data, text, part->len) == 0;
}

/* Reads a multipart body. Returns 0, or -1 after replying 400. */
static int read_form(apig_call *call, const apig_header *content_type,
                     import_input *in) {
  char boundary[APIG_BOUNDARY_MAX + 1];
  int rc = apig_header_param(content_type->value, content_type->value_len,
                             "boundary", boundary, sizeof boundary);
  if (rc != 1) {
    apig_reply_error(call->reply, APIG_E_SERIALIZATION,
                     "multipart/form-data needs a boundary of 1 to 70 "
                     "characters");
    return -1;
  }
  apig_form_part parts[MAX_FORM_PARTS];
  char err[160];
  long count = apig_multipart_parse(call->req->body ? call->req->body : "",
                                    call->req->body_len, boundary, parts,
                                    MAX_FORM_PARTS, err, sizeof err);
  if (count < 0) {
    apig_reply_error(call->reply, APIG_E_SERIALIZATION, err);
    return -1;
  }
  const apig_form_part *file = form_part(parts, count, "file_name");
  if (!file) {
    apig_reply_error(call->reply, APIG_E_PARAM_MISSING, "file_name");
    return -1;
  }
  in->text = file->data;
  in->len = file->len;
  const apig_form_part *group = form_part(parts, count, "group_id");
  if (group && !(in->group_id = apig_strndup(group->data, group->len))) {
    apig_reply_error(call->reply, APIG_E_SYSTEM);
    return -1;
  }
  const apig_form_part *create = form_part(parts, count, "is_create_group");
  if (create)
    in->create_group = part_equals(create, "true") ? 1 : -1;
  return 0;
}

/* Fills in from the body and the query. Returns 0, or -1 after answering
 * 400. */
static int read_input(apig_call *call, import_input *in) {
  const apig_header *content_type;
  size_t n = apig_find_header(call->req->headers, call->req->header_count,
                              "Content-Type", &content_type);
  if (n > 1) {
    apig_reply_error(call->reply, APIG_E_SERIALIZATION,
                     "more than one Content-Type header");
    return -1;
  }
  if (n == 1 &&
      apig_is_multipart(content_type->value, content_type->value_len)) {
    if (read_form(call, content_type, in) != 0)
      return -1;
  } else {
    in->text = call->req->body ? call->req->body : "";
    in->len = call->req->body_len;
  }
  const apig_param *group_id = apig_query(call, "group_id");
  if (!in->group_id && group_id &&
      !(in->group_id = apig_strdup(group_id->value))) {
    apig_reply_error(call->reply, APIG_E_SYSTEM);
    return -1;
  }
  const apig_param *create = apig_query(call, "is_create_group");
  if (!in->create_group && create)
    in->create_group = strcmp(create->value, "true") == 0 ? 1 : -1;
  return 0;
}

void apig_handle_import(apig_call *call) {
  import_input in = {0};
  cJSON *doc = NULL;
  if (read_input(call, &in) != 0)
    goto done;
  apig_group *group = NULL;
  if (in.group_id) {
    group = apig_instance_group(call->inst, in.group_id);
    if (!group) {
      apig_reply_error(call->reply, APIG_E_GROUP_NOT_FOUND, in.group_id);
      goto done;
    }
  } else if (in.create_group != 1) {
    apig_reply_error(call->reply, APIG_E_PARAM_MISSING, "group_id");
    goto done;
  }
  char err[160];
  doc = apig_openapi_parse(in.text, in.len, err, sizeof err);
  if (!doc) {
    apig_reply_error(call->reply, APIG_E_SERIALIZATION, err);
    goto done;
  }
  apig_import_document(call, doc, group);
done:
  cJSON_Delete(doc);
  apig_free(in.group_id);
}
