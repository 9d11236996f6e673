// Package google holds herd's two Google places providers, each a
// places.Finder that answers in the legacy Nearby Search shape:
//
//   - Legacy ("google") calls the legacy Nearby Search endpoint,
//     GET .../maps/api/place/nearbysearch/json?location=LAT,LNG&radius=METRES&key=KEY,
//     and passes Google's answer through places.Parse unchanged.
//   - PlacesNew ("google-new") calls Places API (New),
//     POST https://places.googleapis.com/v1/places:searchNearby, the only
//     Places API that new Google Cloud projects can enable, and maps its
//     answer onto the legacy format.
//
// Both read nothing from the environment: the caller passes the key (from
// GOOGLE_PLACES_API_KEY) in Options. With no key they answer REQUEST_DENIED
// without any network call. Errors they return never contain the key.
//
// # Places API (New) to legacy mapping
//
// PlacesNew asks only for the fields it maps (the X-Goog-FieldMask header is
// exactly the list below) and builds each legacy result from them, members in
// alphabetical order as Google prints them. A legacy member is left out when
// its Places (New) source is absent.
//
//	legacy result member            Places API (New) Place field
//	------------------------------  -------------------------------------------
//	business_status                 businessStatus (same enum strings)
//	geometry.location.lat, .lng     location.latitude, .longitude
//	geometry.viewport.northeast     viewport.high (latitude, longitude)
//	geometry.viewport.southwest     viewport.low (latitude, longitude)
//	icon                            iconMaskBaseUri + ".png"
//	icon_background_color           iconBackgroundColor
//	icon_mask_base_uri              iconMaskBaseUri
//	name                            displayName.text
//	opening_hours.open_now          currentOpeningHours.openNow
//	photos[].height, .width         photos[].heightPx, .widthPx
//	photos[].html_attributions      photos[].authorAttributions as
//	                                <a href="uri">displayName</a>
//	photos[].photo_reference        photos[].name ("places/ID/photos/REF")
//	place_id, reference             id
//	plus_code.compound_code         plusCode.compoundCode
//	plus_code.global_code           plusCode.globalCode
//	price_level                     priceLevel: PRICE_LEVEL_FREE 0,
//	                                _INEXPENSIVE 1, _MODERATE 2, _EXPENSIVE 3,
//	                                _VERY_EXPENSIVE 4 (others: left out)
//	rating                          rating
//	scope                           always "GOOGLE"
//	types                           types
//	user_ratings_total              userRatingCount
//	vicinity                        shortFormattedAddress
//
// Numbers are copied digit for digit. A location or viewport corner whose
// latitude or longitude is missing (proto3 JSON leaves out zeros) gets 0.
// The top level is html_attributions [] and results; status is OK, or
// ZERO_RESULTS when "places" is missing or empty (Google answers {} then).
//
// Places API (New) errors come as HTTP 4xx with a body
// {"error":{"code":…,"message":…,"status":…}}. They become a legacy response
// with error_message = message and this status:
//
//	Places API (New) error.status        legacy status
//	-----------------------------------  ----------------
//	INVALID_ARGUMENT                     INVALID_REQUEST
//	PERMISSION_DENIED, UNAUTHENTICATED   REQUEST_DENIED
//	RESOURCE_EXHAUSTED                   OVER_QUERY_LIMIT
//	anything else                        UNKNOWN_ERROR
//
// Any other failure (no answer, HTTP 5xx or another non-2xx status without
// that body, a body that is not JSON) is returned as an error.
package google
