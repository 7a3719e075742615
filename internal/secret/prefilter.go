package secret

// prefilter finds every occurrence of a set of keywords in one pass over
// the data, ignoring ASCII case. It is an Aho-Corasick automaton compiled
// into a dense transition table, so each input byte costs one table load.
type prefilter struct {
	// next[s*256+b] is 256 times the state after reading byte b in
	// state s (pre-multiplied, so the scan loop needs no shift).
	next []int32
	// out[s] lists the keywords that end in state s (following failure
	// links); hasOut[s] says whether out[s] is non-empty.
	out    [][]int32
	hasOut []bool
}

// newPrefilter builds the automaton for keywords, which must be lowercase
// and non-empty.
func newPrefilter(keywords []string) *prefilter {
	// Build the trie.
	type node struct {
		child map[byte]int32
		fail  int32
		out   []int32
	}
	nodes := []node{{child: map[byte]int32{}}}
	for ki, kw := range keywords {
		s := int32(0)
		for i := 0; i < len(kw); i++ {
			c := kw[i]
			n, ok := nodes[s].child[c]
			if !ok {
				n = int32(len(nodes))
				nodes = append(nodes, node{child: map[byte]int32{}})
				nodes[s].child[c] = n
			}
			s = n
		}
		nodes[s].out = append(nodes[s].out, int32(ki))
	}
	p := &prefilter{
		next:   make([]int32, len(nodes)*256),
		out:    make([][]int32, len(nodes)),
		hasOut: make([]bool, len(nodes)),
	}
	// Breadth-first: fill transitions and failure links.
	queue := []int32{0}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if s != 0 {
			nodes[s].out = append(nodes[s].out, nodes[nodes[s].fail].out...)
		}
		for b := 0; b < 256; b++ {
			c := foldByte(byte(b))
			if n, ok := nodes[s].child[c]; ok {
				p.next[int(s)*256+b] = n
				if byte(b) == c { // enqueue each child once
					if s != 0 {
						nodes[n].fail = p.next[int(nodes[s].fail)*256+b]
					}
					queue = append(queue, n)
				}
			} else if s != 0 {
				p.next[int(s)*256+b] = p.next[int(nodes[s].fail)*256+b]
			}
		}
	}
	for i := range p.next {
		p.next[i] <<= 8
	}
	for i := range nodes {
		p.out[i] = nodes[i].out
		p.hasOut[i] = len(nodes[i].out) > 0
	}
	return p
}

// foldByte lowercases an ASCII letter.
func foldByte(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// scan calls hit with the keyword index and the offset just past the end
// of every keyword occurrence in data.
func (p *prefilter) scan(data []byte, hit func(kw int, end int)) {
	next, hasOut := p.next, p.hasOut
	s := 0
	for i, b := range data {
		s = int(next[s|int(b)])
		if hasOut[s>>8] {
			for _, k := range p.out[s>>8] {
				hit(int(k), i+1)
			}
		}
	}
}
