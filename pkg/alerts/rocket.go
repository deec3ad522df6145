package alerts

// newRocket posts the Slack payload, unescaped, to a Rocket.Chat incoming
// webhook, which reads Slack's attachments, channel, username and icons.
func newRocket(e *endpoint, cfg Config) Notifier {
	return &slackCompatible{endpoint: e, cfg: cfg}
}
