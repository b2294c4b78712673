/* Reloads the policy when its file changes on disk. */
#ifndef APIG_POLICY_WATCH_H
#define APIG_POLICY_WATCH_H

#include <uv.h>

#include "apig.h"

/* Watches the handle's policy file on loop; a change reloads it between
 * requests (a file that fails to load keeps the old policy). Returns 0, or
 * -1 when the handle has no policy file or the watch failed (logged). */
int apig_policy_watch_start(apig_t *apig, uv_loop_t *loop);

/* Stops the watch; its handles close on the loop's next iteration. */
void apig_policy_watch_stop(apig_t *apig);

#endif
