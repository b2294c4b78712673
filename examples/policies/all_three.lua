-- Combines three example policies into one file: environment aliases
-- (map_env), the change freeze (authorize) and the remark prefix
-- (rewrite_remark). require finds the other files in this folder.
--
--   apig-server --policy examples/policies/all_three.lua

local policy = {}

policy.map_env = require("env_aliases").map_env
policy.authorize = require("change_freeze").authorize
policy.rewrite_remark = require("remark_rewriter").rewrite_remark

return policy
