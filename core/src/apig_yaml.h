/* YAML documents as cJSON trees, through libyaml. */
#ifndef APIG_APIG_YAML_H
#define APIG_APIG_YAML_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Parses one YAML document into the equivalent JSON tree: mappings become
 * objects (keys as strings), sequences arrays, plain scalars numbers,
 * booleans or null under the YAML 1.2 core schema, else strings.
 * Returns NULL with a reason (line and column) in err. */
cJSON *apig_yaml_parse(const char *text, size_t len, char *err,
                       size_t err_size);

#endif
