/* Input rules shared by the create and update calls and the importer. */
#ifndef APIG_VALIDATE_H
#define APIG_VALIDATE_H

#include <cjson/cJSON.h>

#include "handler.h"

/* Environment names: 3 to 64 characters of letters, digits and '_',
 * starting with a letter. */
int apig_valid_env_name(const char *name);

/* Group and API names: 3 to 255 characters, starting with a letter, digit
 * or CJK character, then letters, digits, CJK characters and "-_./:()". */
int apig_valid_name(const char *name);

/* Rewrites text into a valid group or API name (invalid characters become
 * '_', short names are padded, long ones cut). out holds at least 1024
 * bytes. */
void apig_make_name(const char *text, char *out, size_t size);

/* A remark: valid UTF-8 of at most 255 characters. */
int apig_valid_remark(const char *remark);

/* Validates an API definition body for create or update. On success stores
 * in *group the API's group, in def_out the definition text to store (free
 * with apig_free) and returns APIG_E_OK; otherwise returns the error and
 * the parameter it names in *param. */
apig_error apig_check_api_body(apig_call *call, const cJSON *body,
                               apig_group **group, char **def_out,
                               const char **param);

/* Is there an API other than `except` in group with this name, or with
 * this method and URI? Returns APIG_E_API_NAME_EXISTS,
 * APIG_E_API_ROUTE_EXISTS or APIG_E_OK. */
apig_error apig_check_api_unique(const apig_instance *inst,
                                 const apig_group *group, const char *name,
                                 const char *method, const char *uri,
                                 const apig_api *except);

/* Reads name (required, checked by valid_name) and remark (optional,
 * at most 255 characters) of an environment or group body. Returns 0, or
 * -1 after replying with APIG.2001 or APIG.2011. */
int apig_read_name_remark(apig_call *call, const cJSON *body,
                          int (*valid_name)(const char *), const char **name,
                          const char **remark);

/* Checks the rules of the group an API is created in or moved to: a
 * unique name and route (api, the API being updated, is left out; NULL
 * on create) and the group's quota when the API is new there. Returns 0,
 * or -1 after replying with APIG.3202, APIG.3301 or APIG.3125. */
int apig_check_api_target(apig_call *call, const cJSON *body,
                          const apig_api *api, const apig_group *group);

#endif
