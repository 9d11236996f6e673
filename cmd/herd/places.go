package main

import (
	"log/slog"

	"herd/internal/config"
	"herd/internal/places"
	"herd/internal/places/cache"
	"herd/internal/places/google"
	"herd/internal/places/offline"
)

// finderFactory builds the configured places provider once and returns a
// function giving each server its finder. The offline index is shared by
// every server of the process; a network provider gets one cache per
// server, so each server asks the places service itself.
func finderFactory(pc config.PlacesConfig, getenv func(string) string, progress *slog.Logger) func(string) places.Finder {
	if pc.Provider == "offline" {
		f := offline.New()
		progress.Info("places: offline GeoNames gazetteer (no key needed)")
		return func(string) places.Finder { return f }
	}
	key := getenv("GOOGLE_PLACES_API_KEY")
	if key == "" {
		progress.Warn("GOOGLE_PLACES_API_KEY is not set: every WHATSAT will answer REQUEST_DENIED", "provider", pc.Provider)
	}
	opts := google.Options{Endpoint: pc.Endpoint, Key: key, Timeout: pc.Timeout.D}
	var upstream places.Finder
	if pc.Provider == "google" {
		upstream = google.NewLegacy(opts)
	} else {
		upstream = google.NewPlacesNew(opts)
	}
	progress.Info("places: " + pc.Provider)
	return func(string) places.Finder {
		return cache.New(upstream, cache.Options{
			TTL: pc.CacheTTL.D, MaxEntries: pc.CacheSize, MaxBytes: pc.CacheBytes, Rate: pc.RateLimit, Burst: pc.RateBurst,
			UpstreamTimeout: pc.Timeout.D,
		})
	}
}
