/* The handle behind apig_t and the state every part reaches through it. */
#ifndef APIG_IMPL_H
#define APIG_IMPL_H

#include "auth.h"
#include "core.h"
#include "metrics.h"
#include "persist.h"
#include "policy.h"
#include "store.h"

struct apig {
  apig_options options; /* strings below are owned copies */
  char *data_dir, *policy_file, *credentials_file;
  const apig_allocator *allocator;
  apig_logger logger;
  apig_store store;
  apig_persist *persist; /* NULL without a data folder */
  apig_policy *policy;   /* NULL without a policy */
  apig_credentials *credentials; /* NULL in development mode */
  apig_metrics metrics;
  void *policy_watch; /* owned by policy_watch.c, or NULL */
  char request_id[APIG_ID_LEN + 1]; /* of the request being dispatched */
  struct apig_server *server; /* serving it (apig_serve), or NULL */
};

/* Creates the instance "PROJECT_ID:INSTANCE_ID" unless it exists, durably.
 * Returns 0, or -1 with a message in *errmsg (free with apig_free()). */
int apig_add_instance(apig_t *apig, const char *spec, char **errmsg);

/* Is the "HOST:PORT" or "[V6]:PORT" address on the loopback interface
 * (127.0.0.0/8, ::1, or ::ffff:127.x)? */
int apig_listen_is_loopback(const char *listen);

/* Reloads the policy file: a file that fails to load keeps the old policy.
 * Returns 0 or -1 (logged). */
int apig_reload_policy(apig_t *apig);
/* Reloads the credentials file, with the same rule. */
int apig_reload_credentials(apig_t *apig);

#endif
