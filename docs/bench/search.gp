set terminal pngcairo size 900,560 noenhanced font ',11'
set output "search.png"
set title "Search vs messages in the database"
set xlabel "messages in the database"
set ylabel "ms per request (median)"
set logscale x
set grid
set key top left
set format x '%.0s%c'
set logscale y
plot "search.dat" using 1:2 with linespoints lw 2 pt 7 title "q=topic7 (1 %), relevance", \
     "search.dat" using 1:3 with linespoints lw 2 pt 7 title "q=plan (every message), relevance", \
     "search.dat" using 1:4 with linespoints lw 2 pt 7 title "q=plan, newest", \
     "search.dat" using 1:5 with linespoints lw 2 pt 7 title "no match", \
     "search.dat" using 1:6 with linespoints lw 2 pt 7 title "q=topic7, searcher in 510 chats (row by row)"
