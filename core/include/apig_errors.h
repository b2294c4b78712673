/* The product's error codes: one table shared by HTTP, the C API and Lua.
 *
 * Each row is X(NAME, HTTP status, "APIG.xxxx", message template). A
 * template holds at most two "%s", filled in order by apig_error_format().
 * Clients key on the APIG code; the templates name the offending value.
 */
#ifndef APIG_ERRORS_H
#define APIG_ERRORS_H

#define APIG_ERROR_TABLE(X)                                                   \
  X(OK, 200, "APIG.0000", "OK")                                               \
  X(SERIALIZATION, 400, "APIG.2000",                                          \
    "Parameter error: Serialization error: %s")                               \
  X(PARAM_MISSING, 400, "APIG.2001",                                          \
    "The request parameters must be specified,parameterName:%s. "             \
    "Please refer to the support documentation")                              \
  X(PARAM_INVALID, 400, "APIG.2011",                                          \
    "Invalid parameter value,parameterName:%s. "                              \
    "Please refer to the support documentation")                              \
  X(ACTION_INVALID, 400, "APIG.2011",                                         \
    "Invalid parameter value: parameter action should be \"online\" or "      \
    "\"offline\"")                                                            \
  X(QUERY_INVALID, 400, "APIG.2012",                                          \
    "Invalid parameter value,parameterName:%s. "                              \
    "Please refer to the support documentation")                              \
  X(BAD_REQUEST, 400, "APIG.2000", "Parameter error: Bad request: %s")        \
  X(GROUP_NAME_EXISTS, 400, "APIG.3201",                                      \
    "The API group name already exists,name:%s")                              \
  X(API_NAME_EXISTS, 400, "APIG.3202", "The API name already exists,name:%s") \
  X(ENV_NAME_EXISTS, 400, "APIG.3205",                                        \
    "The environment name already exists,name:%s")                            \
  X(API_ROUTE_EXISTS, 400, "APIG.3301", "The API already exists,route:%s")    \
  X(TOKEN_MISSING, 401, "APIG.1000", "The token must be specified")           \
  X(TOKEN_INVALID, 401, "APIG.1002",                                          \
    "Incorrect token or token resolution failed")                             \
  X(SIGNATURE_INVALID, 401, "APIG.0301",                                      \
    "Incorrect IAM authentication information: verify aksk signature fail")   \
  X(AK_UNKNOWN, 401, "APIG.0301",                                             \
    "Incorrect IAM authentication information: ak not exist")                 \
  X(SDK_DATE_EXPIRED, 401, "APIG.0301",                                       \
    "Incorrect IAM authentication information: x-sdk-date expired")           \
  X(NO_PERMISSION, 403, "APIG.1005", "No permissions to request this method") \
  X(ENV_PROTECTED, 403, "APIG.1103",                                          \
    "No permissions to perform operations on this environment,id:%s")         \
  X(ENV_QUOTA, 403, "APIG.3104",                                              \
    "The number of environments exceeds the limit of %s")                     \
  X(GROUP_API_QUOTA, 403, "APIG.3125",                                        \
    "The number of APIs in the group exceeds the limit of %s")                \
  X(GROUP_HAS_APIS, 403, "APIG.3415",                                         \
    "The API group cannot be deleted because it contains APIs,id:%s")         \
  X(ENV_HAS_APIS, 403, "APIG.3418",                                           \
    "The environment contains published APIs,id:%s")                          \
  X(GROUP_NOT_FOUND, 404, "APIG.3001", "API group %s does not exist")         \
  X(API_NOT_FOUND, 404, "APIG.3002", "API %s does not exist")                 \
  X(BATCH_API_NOT_FOUND, 404, "APIG.3002", "Api %s not found")                \
  X(ENV_NOT_FOUND, 404, "APIG.3003", "Environment %s does not exist")         \
  X(NOT_PUBLISHED, 404, "APIG.3015",                                          \
    "The API %s is not published in environment %s")                          \
  X(VERSION_NOT_FOUND, 404, "APIG.3022",                                      \
    "The API version does not exist,id:%s")                                   \
  X(INSTANCE_NOT_FOUND, 404, "APIG.3030", "The instance does not exist")      \
  X(ROUTE_NOT_FOUND, 404, "APIG.2012", "No route matches %s %s")              \
  X(METHOD_NOT_ALLOWED, 405, "APIG.2012",                                     \
    "Method %s is not allowed on path %s")                                    \
  X(REQUEST_TIMEOUT, 408, "APIG.2000",                                        \
    "Parameter error: the request did not arrive within %s seconds")          \
  X(API_PUBLISHED, 409, "APIG.3416",                                          \
    "The API cannot be deleted because it has been published,id:%s")          \
  X(BODY_TOO_LARGE, 413, "APIG.2000",                                         \
    "Parameter error: the request body exceeds the limit of %s bytes")        \
  X(HEADERS_TOO_LARGE, 431, "APIG.2000",                                      \
    "Parameter error: the request line and headers exceed %s bytes")          \
  X(SYSTEM, 500, "APIG.9999", "System error")                                 \
  X(UNAVAILABLE, 503, "APIG.9999", "System error: %s")

typedef enum apig_error {
#define APIG_ERROR_ENUM(name, status, code, message) APIG_E_##name,
  APIG_ERROR_TABLE(APIG_ERROR_ENUM)
#undef APIG_ERROR_ENUM
      APIG_E__COUNT
} apig_error;

#endif
