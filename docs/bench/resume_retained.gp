set terminal pngcairo size 900,560 noenhanced font ',11'
set output "resume_retained.png"
set title "Resume of 10 events vs events in the outbox after N"
set xlabel "events in the outbox after N (all users)"
set ylabel "ms, connect -> last missed event (median)"
set logscale x
set grid
set key top left
set format x '%.0s%c'
set logscale y
x1 = 1000000.0; y1 = 0.42
plot "resume_retained.dat" using 1:2 with linespoints lw 2 pt 7 title "resume, 10 of them the user's", \
     y1 * x / x1 with lines dt 2 lc rgb 'gray' title 'linear (slope 1)'
