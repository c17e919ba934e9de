# `make help`: targets documented with `## text`, grouped under the last `##@ Group` line above
# them (in any of the Makefiles given), groups in the order they first appear.
/^##@ / { group = substr($0, 5); if (!(group in seen)) { seen[group] = 1; order[++groups] = group }; next }
/^[a-zA-Z0-9_.-]+:([^=]|$)/ && / ## / {
  name = $0; sub(/:.*/, "", name)
  text = $0; sub(/^[^#]*## /, "", text)
  if (group == "") { group = "Other"; if (!("Other" in seen)) { seen[group] = 1; order[++groups] = group } }
  lines[group] = lines[group] sprintf("  \033[36m%-18s\033[0m %s\n", name, text)
}
END {
  for (i = 1; i <= groups; i++) if (order[i] in lines) printf "%s\n%s", order[i] ":", lines[order[i]]
}
