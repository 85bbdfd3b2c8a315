package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/hookgate/hookgate/sender"
	"github.com/hookgate/hookgate/sender/queue"
)

// feeds answers GET /webhooks/feeds: each feed's pending and served records and its last
// call (when, from where, how many records and bytes), so an operator sees when the
// caller stopped calling.
func (a *AdminAPI) feeds(w http.ResponseWriter, r *http.Request, app *App) error {
	out := []sender.FeedStatus{}
	if app != nil {
		for _, f := range app.feeds {
			ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
			st, err := f.Status(ctx)
			cancel()
			if err != nil {
				return storeErr(err)
			}
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return writeJSON(w, out)
}

// requeueFeed answers POST /webhooks/feeds/<name>/requeue?since=<RFC 3339 time or
// duration ago> or ?id=<record id>: served records become pending again.
func (a *AdminAPI) requeueFeed(w http.ResponseWriter, r *http.Request, app *App, name string) error {
	if app == nil {
		return apiErr(http.StatusNotFound, "no webhooks app is running")
	}
	f, ok := app.feeds[name]
	if !ok {
		return apiErr(http.StatusNotFound, "no feed %q", name)
	}
	q := r.URL.Query()
	id, sinceText := q.Get("id"), q.Get("since")
	var since time.Time
	switch {
	case id != "" && sinceText != "":
		return apiErr(http.StatusBadRequest, "give id or since, not both")
	case id == "" && sinceText == "":
		return apiErr(http.StatusBadRequest, "give ?since=<RFC 3339 time, or a duration ago such as 2h> or ?id=<record id>")
	case sinceText != "":
		if t, err := time.Parse(time.RFC3339, sinceText); err == nil {
			since = t
		} else if d, err := time.ParseDuration(sinceText); err == nil && d > 0 {
			since = time.Now().Add(-d)
		} else {
			return apiErr(http.StatusBadRequest, "since %q: an RFC 3339 time or a positive duration", sinceText)
		}
	}
	n, err := f.Requeue(r.Context(), id, since)
	if errors.Is(err, queue.ErrNotFound) {
		return apiErr(http.StatusNotFound, "no served record %q in feed %s", id, name)
	}
	if err != nil {
		return storeErr(err)
	}
	feedRecords.WithLabelValues(name, "requeued").Add(float64(n))
	return writeJSON(w, map[string]any{"feed": name, "requeued": n})
}
