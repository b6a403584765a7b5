package dashboard

import (
	"html/template"

	"github.com/keygate/keygate/admin"
)

// errorClasses are the failure classes of SPEC section 4.
var errorClasses = []string{"authentication_error", "permission_denied", "insufficient_quota", "rate_limit_exceeded",
	"service_unavailable", "internal_error", "unknown_error"}

// i18nFuncs are the template functions for one language.
func i18nFuncs(lang string) template.FuncMap {
	return template.FuncMap{
		"t": func(s string) string {
			if lang == "zh" {
				if z, ok := zh[s]; ok {
					return z
				}
			}
			return s
		},
		"statuses": func() []string { return admin.Statuses },
		"classes":  func() []string { return errorClasses },
	}
}

// zh is the Chinese of every English string the pages and scripts show;
// the scripts get it as /assets/i18n.js. A string missing here shows in English.
var zh = map[string]string{
	// Pages (SPEC section 10 names them).
	"Overview": "概览", "Keys": "密钥", "Models": "模型", "Tokens": "令牌", "Usage": "用量", "Users": "用户", "Audit": "审计",
	// Key statuses and classes.
	"healthy": "健康", "unused": "未使用", "warning": "警告", "error": "错误", "cooldown": "冷却中", "disabled": "已禁用",
	"enabled": "已启用", "inactive": "不可用",
	"authentication_error": "认证失败", "permission_denied": "权限不足", "insufficient_quota": "额度不足",
	"rate_limit_exceeded": "触发限流", "service_unavailable": "服务不可用", "internal_error": "上游内部错误", "unknown_error": "未知错误",
	// Sign-in.
	"Sign in": "登录", "Sign out": "退出登录", "Signed in as": "当前登录", "Operator dashboard": "运维控制台",
	"Admin user": "管理员账号", "Username": "用户名", "Password": "密码", "or": "或",
	"Your session ended; sign in again.":                                                     "会话已结束，请重新登录。",
	"No credential is configured (open mode, loopback only): sign in with the fields empty.": "未配置任何凭据（开放模式，仅限本机）：留空直接登录。",
	"Wrong username or password.":                                                            "用户名或密码错误。",
	"Wrong admin token.":                                                                     "管理令牌错误。",
	"Sign-in from another site refused.":                                                     "已拒绝来自其他站点的登录。",
	"Enter a username and password, or the admin token.":                                     "请输入用户名和密码，或管理令牌。",
	"This server has no users; sign in with the admin token.":                                "此服务器没有用户，请使用管理令牌登录。",
	"The form could not be read.":                                                            "无法读取表单。",
	"Skip to content":                                                                        "跳到正文", "Pages": "页面",
	// Overview.
	"Keys by status": "按状态统计密钥", "all models": "全部模型", "Total keys": "密钥总数", "Last hour": "最近一小时",
	"Requests / min": "每分钟请求", "Errors / min": "每分钟错误", "Avg latency": "平均延迟",
	"Requests per minute, last hour": "最近一小时每分钟请求数", "Today": "今日", "Tokens used": "Token 用量", "Requests": "请求数", "Cost": "费用",
	"Key sources": "密钥来源", "Keys about to run out": "即将耗尽的密钥", "Loading…": "加载中…",
	"Last fetch": "上次获取", "Expires": "过期时间", "Fetches": "获取次数", "Failures": "失败次数", "Last error": "最近错误",
	"No key has an error.": "没有出错的密钥。", "{n} ready for retry": "{n} 个待重试", "next key back in {d}": "下一个密钥 {d} 后恢复",
	"No model fetches its key from a key service.":                                         "没有模型从密钥服务获取密钥。",
	"This version of keygate reports no quota forecast (remaining_requests, exhausts_at).": "此版本的 keygate 不提供额度预测（remaining_requests、exhausts_at）。",
	"No keys.": "没有密钥。", "No key is forecast to run out within the hour.": "预计一小时内没有密钥耗尽。",
	"Runs out": "预计耗尽", "Requests left": "剩余请求", "Tokens left": "剩余 Token", "Window resets": "窗口重置",
	"No requests today yet.": "今天还没有请求。", "Update failed: {e}": "刷新失败：{e}", "Updated {t}": "更新于 {t}",
	// Keys.
	"Check keys": "检测密钥", "Import keys": "导入密钥", "Search": "搜索", "id, key, model, error": "ID、密钥、模型、错误",
	"Status": "状态", "All": "全部", "Model": "模型", "Error class": "错误类别", "Select keys for bulk actions": "选择密钥以批量操作",
	"Reset": "重置", "Enable": "启用", "Disable": "禁用", "Check": "检测", "Delete": "删除", "Checking keys": "正在检测密钥",
	"Check progress": "检测进度", "Select all on this page": "全选本页", "Key": "密钥", "Back in": "恢复于",
	"Success": "成功率", "Latency": "延迟", "Last used": "最近使用", "Actions": "操作", "Close": "关闭",
	"Keys, one per line (blank lines and # comments are skipped)": "每行一个密钥（跳过空行和 # 注释）",
	"Import": "导入", "No keys match.": "没有匹配的密钥。", "Select key {k}": "选择密钥 {k}", "after reset": "需重置",
	"Details": "详情", "{a}–{b} of {n} keys": "第 {a}–{b} 个，共 {n} 个密钥", "0 keys": "0 个密钥",
	"Previous": "上一页", "Next": "下一页", "{n} selected": "已选 {n} 个",
	"Delete {n} key(s) from every model that uses them?": "从所有使用它们的模型中删除这 {n} 个密钥？",
	"{action}: {n} of {m} done":                          "{action}：完成 {n} / {m}", "starting…": "开始…",
	"{d} / {n} keys ({p} %)": "{d} / {n} 个密钥（{p} %）", "{p} passed, {f} failed": "{p} 个通过，{f} 个失败",
	"First error": "首次出错", "Retries": "重试次数", "Next retry": "下次重试",
	"{n} ({ok} ok, {bad} failed, {rate} success)": "{n}（成功 {ok}，失败 {bad}，成功率 {rate}）",
	"{p} prompt, {c} completion":                  "输入 {p}，输出 {c}", "Fetched from": "获取自",
	"Requests of this key, last 24 hours": "此密钥最近 24 小时的请求", "Advice": "建议", "Last 24 hours": "最近 24 小时",
	"No usage history.": "没有用量记录。", "Paste at least one key.": "请至少粘贴一个密钥。",
	"{a} added, {d} duplicates":                                        "新增 {a} 个，重复 {d} 个",
	"Duplicates (already in the model, or repeated in the paste):":     "重复的密钥（模型中已有，或粘贴内容中重复）：",
	"Switched off by an operator: Enable puts it back.":                "已被运维人员关闭：点击启用即可恢复。",
	"The key is slow; watch it, or lower its weight.":                  "密钥响应慢：请观察，或降低其权重。",
	"Many calls fail; check the provider and the network, then reset.": "大量调用失败：请检查服务商和网络，然后重置。",
	"Nothing to do.": "无需处理。",
	"Replace the key; reset it only if it was restored.":                                            "请更换密钥；只有在密钥已恢复时才重置。",
	"Check the key's project or organisation access to the model.":                                  "请检查密钥所属项目或组织对该模型的访问权限。",
	"Top up the account; keygate re-checks on its schedule and brings the key back.":                "请为账户充值；keygate 会按计划复检并自动恢复密钥。",
	"Nothing to do: the cooldown follows the provider's Retry-After; add keys for more throughput.": "无需处理：冷却时间遵循服务商的 Retry-After；如需更高吞吐请增加密钥。",
	"Nothing to do: the provider is overloaded; keygate retries after a short cooldown.":            "无需处理：服务商过载，keygate 会在短暂冷却后重试。",
	"Nothing to do unless it persists; then check the provider's status page.":                      "除非持续出现，否则无需处理；持续时请查看服务商状态页。",
	"Read the last error; reset the key once the cause is fixed.":                                   "请查看最近错误，问题解决后重置密钥。",
	"{n} s": "{n} 秒", "{m} min {s} s": "{m} 分 {s} 秒", "{h} h {m} min": "{h} 小时 {m} 分",
	// Models.
	"New model": "新建模型", "Provider": "服务商", "Key source": "密钥来源", "Price in / out": "价格 输入 / 输出",
	"RPM / TPM": "RPM / TPM", "Fallbacks": "备用模型", "No models yet.": "还没有模型。", "Edit": "编辑",
	"Edit model {m}": "编辑模型 {m}", "Model id (what clients send)": "模型 ID（客户端发送的名称）", "Display name": "显示名称",
	"Base URL": "Base URL", "Upstream model": "上游模型", "Key usage mode": "密钥使用方式", "Type": "类型",
	"API version (azure)": "API 版本（Azure）", "Input price (USD / M tokens)": "输入价格（美元 / 百万 Token）",
	"Output price (USD / M tokens)": "输出价格（美元 / 百万 Token）", "Max tokens": "最大 Token 数", "Context window": "上下文窗口",
	"Fallbacks (model ids, comma-separated)": "备用模型（模型 ID，逗号分隔）",
	"Keys of this model (untick to remove)":  "此模型的密钥（取消勾选即删除）", "Add keys, one per line": "添加密钥，每行一个",
	"Key source (a key service that hands out expiring keys; optional)": "密钥来源（下发临时密钥的密钥服务，可选）",
	"Key service URL": "密钥服务地址", "Scene code": "场景码", "Method": "请求方法", "Key lifetime (s)": "密钥有效期（秒）",
	"Refresh before expiry (s)": "提前刷新（秒）", "Description": "描述", "Save": "保存",
	"Model saved.": "模型已保存。", "Model created.": "模型已创建。", "Model deleted.": "模型已删除。",
	"Delete model {m}? Its keys stop serving it at once.": "删除模型 {m}？其密钥将立即停止为它服务。",
	// Tokens.
	"New token": "新建令牌", "Name": "名称", "Owner user": "所属用户", "Models (comma-separated, * = all)": "模型（逗号分隔，* 表示全部）",
	"Expires (optional)": "过期时间（可选）", "Budget (USD)": "预算（美元）", "Budget period": "预算周期",
	"daily": "每日", "monthly": "每月", "total": "总计", "Create token": "创建令牌",
	"Copy this token now: it is shown only once.": "请立即复制此令牌：它只显示这一次。", "Copy": "复制", "Copied": "已复制",
	"User": "用户", "Budget": "预算", "Spent": "已花费", "Created": "创建时间", "No tokens yet.": "还没有令牌。", "Revoke": "吊销",
	"Revoke token {n}? Callers using it are refused at once.": "吊销令牌 {n}？使用它的调用方将立即被拒绝。",
	"Token revoked.": "令牌已吊销。",
	// Usage.
	"Export CSV": "导出 CSV", "Period": "时间段", "Last 7 days": "最近 7 天", "Last 30 days": "最近 30 天", "Group by": "分组",
	"model": "模型", "key": "密钥", "user": "用户", "token": "令牌", "Measure": "指标", "By group": "按分组",
	"Usage by group": "按分组的用量", "Totals": "合计", "Over time": "随时间变化", "Usage over time": "用量随时间变化",
	"Group": "分组", "Prompt tokens": "输入 Token", "Completion tokens": "输出 Token", "Total tokens": "Token 总数",
	"No requests in this period.": "此时间段内没有请求。",
	// Users.
	"New user": "新建用户", "Password (8+ characters)": "密码（至少 8 个字符）", "Role": "角色", "admin": "管理员",
	"Create user": "创建用户", "No users yet.": "还没有用户。", "User created.": "用户已创建。", "User deleted.": "用户已删除。",
	"Delete user {u}? Their sign-ins end at once.": "删除用户 {u}？其登录将立即失效。",
	// Audit.
	"Actor": "操作者", "Action": "操作", "Target": "对象", "Time": "时间", "Source address": "来源地址",
	"The audit log is not available in this version of keygate.": "此版本的 keygate 没有审计日志。",
	"No entries in this period.":                                 "此时间段内没有记录。",
}
