set terminal pngcairo size 900,560 noenhanced font ',11'
set output "resume_missed.png"
set title "Resume vs events missed"
set xlabel "events missed (all the user's)"
set ylabel "ms, connect -> last missed event (median)"
set logscale x
set grid
set key top left
set format x '%.0s%c'
set logscale y
x1 = 100000.0; y1 = 1105.0
plot "resume_missed.dat" using 1:2 with linespoints lw 2 pt 7 title "resume", \
     y1 * x / x1 with lines dt 2 lc rgb 'gray' title 'linear (slope 1)'
