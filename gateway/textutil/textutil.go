// Package textutil holds small helpers over text that both the gateway
// and the command-line tools use to suggest what the user may have meant.
package textutil

// maxWord is the longest word EditDistance compares; longer ones are not
// typos of a short keyword, and bounding them keeps the cost small on
// untrusted input (a configuration file, a command line).
const maxWord = 64

// EditDistance is the Levenshtein distance of two short ASCII words
// (bytes are compared). When either is longer than 64 bytes it returns a
// distance larger than any word could have (1<<30).
func EditDistance(a, b string) int {
	if len(a) > maxWord || len(b) > maxWord {
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
