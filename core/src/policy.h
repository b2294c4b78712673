/* Lua 5.4 policy host: map_env, authorize and rewrite_remark hooks in a
 * sandbox with an instruction budget and a memory cap. */
#ifndef APIG_POLICY_H
#define APIG_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

typedef struct apig_policy apig_policy;

typedef struct apig_policy_limits {
  uint64_t budget; /* VM instructions per hook call; 1000000 */
  size_t memory;   /* bytes for the whole Lua state; 64 MiB */
} apig_policy_limits;

/* Read-only data handed to hooks. Strings are borrowed for one call. */
typedef struct apig_policy_api {
  const char *id, *name, *group_id, *group_name, *req_method, *req_uri;
  const char *auth_type, *remark;
  int type;
  size_t published_count; /* environments where the API is online */
  const char *const *published_env_ids;
  const char *const *published_version_ids;
} apig_policy_api;

typedef struct apig_policy_env {
  const char *id, *name, *remark;
} apig_policy_env;

/* The instance's environments, seen by scripts as the read-only table
 * ctx.envs (name to id). id_by_name returns the id of the environment
 * named name, or NULL. env_after returns 1 and the environment after the
 * one named name (the first when name is NULL), or 0 past the last.
 * Strings are borrowed for one call. */
typedef struct apig_policy_envs {
  const void *data;
  const char *(*id_by_name)(const void *data, const char *name);
  int (*env_after)(const void *data, const char *name,
                   const char **next_name, const char **next_id);
} apig_policy_envs;

typedef struct apig_policy_ctx {
  const char *action; /* "online" or "offline" */
  const char *project_id, *instance_id, *request_id, *caller;
  long batch_size;
  int64_t time; /* Unix seconds */
  const char *remark; /* the request's remark, before rewrite_remark */
  const apig_policy_envs *envs; /* NULL: ctx.envs is an empty table */
} apig_policy_ctx;

typedef struct apig_policy_stats {
  uint64_t hook_calls, hook_errors, budget_overruns, memory_overruns;
} apig_policy_stats;

/* Loads `path` into a new sandboxed Lua state. helpers_dir is the folder
 * of the project's Lua helpers that `require` may reach besides the
 * policy's own folder (NULL: none). limits NULL or a zero field takes the
 * default. The file runs under the same limits as one hook call. Returns
 * NULL with "file:line: message" in *errmsg (free with apig_free()).
 *
 * What scripts see besides the base functions and libraries:
 * - log.debug(...), log.info(...), log.warn(...), log.error(...) and
 *   print(...) (info) write their arguments, joined by spaces, to the
 *   logger as "policy FILE:LINE: text" with the request id. A hook call
 *   logs at most 100 lines.
 * - require(name) loads name.lua, dots as folder separators, as text from
 *   the policy's folder, then helpers_dir; names are parts of
 *   [A-Za-z0-9_-] joined by single dots. Results are cached by name.
 * - api, env, ctx, api.published and ctx.envs are read-only userdata
 *   views, valid only during the call they were passed to; pairs() walks
 *   them. */
apig_policy *apig_policy_load(const char *path, const char *helpers_dir,
                              const apig_policy_limits *limits,
                              const apig_logger *logger, char **errmsg);
void apig_policy_free(apig_policy *policy);

int apig_policy_has_map_env(const apig_policy *policy);
int apig_policy_has_authorize(const apig_policy *policy);
int apig_policy_has_rewrite_remark(const apig_policy *policy);
const apig_policy_stats *apig_policy_get_stats(const apig_policy *policy);

/* Each hook call returns APIG_E_OK, or APIG_E_SYSTEM for an error of the
 * hook (raised error, budget, memory, wrong return type, yield). On error,
 * err gets a one-line message naming the hook and the cause, without
 * traceback or file path, which go to the log at warn level. */

/* map_env: *out_env_id is a copy (free with apig_free()) or NULL to keep
 * env_id. env_id may be NULL. */
apig_error apig_policy_map_env(apig_policy *policy, const char *env_id,
                               const apig_policy_api *api,
                               const apig_policy_ctx *ctx, char **out_env_id,
                               char *err, size_t err_size);

/* authorize: *allowed is 1 only when the hook returned true. When denied,
 * message contains the hook's second result when it is a string of valid
 * UTF-8 (else ""), cut to message_size, and code its third when it is a
 * valid "APIG.xxxx" code (else ""). Without the hook, *allowed is 1. */
apig_error apig_policy_authorize(apig_policy *policy,
                                 const apig_policy_api *api,
                                 const apig_policy_env *env,
                                 const apig_policy_ctx *ctx, int *allowed,
                                 char *message, size_t message_size,
                                 char code[16], char *err, size_t err_size);

/* rewrite_remark: *out is a copy of the returned remark (free with
 * apig_free()): a string of valid UTF-8, at most 255 code points, no NUL.
 * Without the hook, *out is a copy of remark (NULL when remark is NULL). */
apig_error apig_policy_rewrite_remark(apig_policy *policy, const char *remark,
                                      const apig_policy_api *api,
                                      const apig_policy_env *env,
                                      const apig_policy_ctx *ctx, char **out,
                                      char *err, size_t err_size);

#endif
