/* Log events go to the host's callback; the library writes nothing itself. */
#include <stdio.h>

#include "core.h"

void apig_log_flush(const apig_logger *logger) {
  if (logger && logger->flush)
    logger->flush(logger->ud);
}

void apig_vlogf(const apig_logger *logger, apig_log_level level,
                const char *request_id, const char *fmt, va_list ap) {
  if (!logger || !logger->fn || level < logger->level)
    return;
  char message[2048];
  vsnprintf(message, sizeof message, fmt, ap);
  apig_log_event event = {level, apig_now_ns(), request_id ? request_id : "",
                          message};
  logger->fn(logger->ud, &event);
}

void apig_logf(const apig_logger *logger, apig_log_level level,
               const char *request_id, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  apig_vlogf(logger, level, request_id, fmt, ap);
  va_end(ap);
}
