package alerts

import "context"

// generic POSTs the Message itself as JSON, for receivers of one's own.
type generic struct{ *endpoint }

func newGeneric(e *endpoint, cfg Config) Notifier {
	e.token = cfg.Token
	return &generic{e}
}

func (n *generic) Notify(ctx context.Context, m Message) error { return n.send(ctx, m, m) }
