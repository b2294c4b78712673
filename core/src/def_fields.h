/* The fields of an API definition that the store keeps outside the JSON
 * text, for filters, policy views and responses. */
#ifndef APIG_DEF_FIELDS_H
#define APIG_DEF_FIELDS_H

#include <stddef.h>

enum {
  APIG_FIELD_NAME,
  APIG_FIELD_REQ_METHOD,
  APIG_FIELD_REQ_URI,
  APIG_FIELD_AUTH_TYPE,
  APIG_FIELD_REQ_PROTOCOL,
  APIG_FIELD_BACKEND_TYPE,
  APIG_FIELD_REMARK,
  APIG_FIELD_COUNT
};

/* Extracted fields: each string is NULL when the definition has no string
 * of that name. All strings live in `text`, one allocation (apig_free). */
typedef struct apig_def_fields {
  char *text;
  const char *value[APIG_FIELD_COUNT];
  int type; /* the number "type", else 0 */
} apig_def_fields;

/* Extracts the fields from the JSON object text def[0..len). Returns 0, -1
 * when def is not a JSON object or memory ran out. Common texts
 * (no escapes in the keys or in the wanted strings) are scanned directly;
 * the others go through cJSON, with the same result. */
int apig_def_fields_read(apig_def_fields *out, const char *def, size_t len);

#endif
