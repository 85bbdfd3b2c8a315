package sender

// Match returns the names of the endpoints MatchEndpoints finds, or nil (for tests).
func (g *Registry) Match(typ string) []string {
	var out []string
	for _, e := range g.MatchEndpoints(typ) {
		out = append(out, e.Name)
	}
	return out
}
